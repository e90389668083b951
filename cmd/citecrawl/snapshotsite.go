package main

import (
	"fmt"
	"io"
	"net/http"
)

// withoutValidators serves h as a site that sends neither ETag nor
// Last-Modified and ignores conditional requests: nothing can be skipped
// with a 304 (`snapshot --validators=false`, for resume experiments).
func withoutValidators(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del("If-None-Match")
		r.Header.Del("If-Modified-Since")
		h.ServeHTTP(noValidatorWriter{w}, r)
	})
}

type noValidatorWriter struct{ http.ResponseWriter }

func (w noValidatorWriter) WriteHeader(code int) {
	w.Header().Del("ETag")
	w.Header().Del("Last-Modified")
	w.ResponseWriter.WriteHeader(code)
}

func (w noValidatorWriter) Write(b []byte) (int, error) {
	w.Header().Del("ETag")
	w.Header().Del("Last-Modified")
	return w.ResponseWriter.Write(b)
}

// logRequests writes one line per request to w (`snapshot --log-requests`),
// so that an experiment can count the pages a crawl asked for.
func logRequests(h http.Handler, w io.Writer) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "request %s %s\n", r.Method, r.URL.Path)
		h.ServeHTTP(rw, r)
	})
}
