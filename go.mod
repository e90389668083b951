module github.com/citecrawl/citecrawl

go 1.26.0

require (
	github.com/PuerkitoBio/goquery v1.13.0
	github.com/rs/zerolog v1.35.1
	golang.org/x/net v0.60.0
)

require (
	github.com/andybalholm/cascadia v1.3.4 // indirect
	github.com/mattn/go-colorable v0.1.14 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)
