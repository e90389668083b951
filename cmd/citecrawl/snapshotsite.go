package main

import (
	"fmt"
	"io"
	"net/http"
)

// logRequests writes one line per request to w (`snapshot --log-requests`),
// so that an experiment can count the pages a crawl asked for.
func logRequests(h http.Handler, w io.Writer) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "request %s %s\n", r.Method, r.URL.Path)
		h.ServeHTTP(rw, r)
	})
}
