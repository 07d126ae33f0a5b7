# Sourced by the Makefile, .ci/run and the scripts: the Go toolchain Confab is built and
# tested with. A machine starts on its own Go with GOTOOLCHAIN=local (which ignores a
# toolchain line in go.mod), so the version is named here. go1.27.3 fixes the standard-library
# vulnerabilities of go1.26.8 that govulncheck finds reachable from Confab (net/http,
# crypto/tls, crypto/x509, net/textproto, html/template); the go command fetches it from the
# Go module proxy on first use (~76 MB, once per machine). go.mod still says go 1.26.8, so a
# plain `go build` with an older 1.26 works, but is not what CI checks.
export GOTOOLCHAIN=go1.27.3
