package record

import (
	"testing"
	"time"
)

func TestIDIsStableAndNormalised(t *testing.T) {
	a := ID("hub-1", "Title:  A Study")
	if a != ID("hub-1", "title a study") {
		t.Fatal("the same paper key written differently gave different ids")
	}
	if a == ID("hub-2", "title a study") {
		t.Fatal("the same paper on two hubs got one id")
	}
}

func TestFingerprintIgnoresFetchTimeAndAddresses(t *testing.T) {
	r := Record{ID: "x", Hub: Hub{ID: "h", URL: "http://127.0.0.1:1/citations/h"}, Paper: Paper{Title: "T", URL: "http://127.0.0.1:1/pith/P"},
		Role: RoleUses, FetchedAt: time.Unix(1, 0), SourceURLs: []string{"http://127.0.0.1:1/a"}}
	s := r
	s.FetchedAt = time.Unix(2, 0)
	s.Hub.URL, s.Paper.URL, s.SourceURLs = "http://127.0.0.1:2/citations/h", "http://127.0.0.1:2/pith/P", []string{"b"}
	if r.Fingerprint() != s.Fingerprint() {
		t.Fatal("a re-fetch of the same content changed the fingerprint")
	}
	s.Role = RoleCompares
	if r.Fingerprint() == s.Fingerprint() {
		t.Fatal("a changed tag kept the fingerprint")
	}
}
