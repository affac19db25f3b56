module github.com/tunterm/tunterm

go 1.26.0

require (
	github.com/google/gopacket v1.1.19 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)
