package snapshot

import "net/http"

// WithoutValidators serves h as a site that sends neither ETag nor
// Last-Modified and ignores conditional requests, so that nothing can be
// skipped with a 304: every refetch of a crawl shows in the pages it asks
// for (`citecrawl snapshot --validators=false`, resume experiments).
func WithoutValidators(h http.Handler) http.Handler {
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
