# gofmt and go vet over every Go file of the module.
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.cache/*'))
if [ -n "$unformatted" ]; then echo "gofmt would change:"; echo "$unformatted"; exit 1; fi
go vet ./...
# examples/consumer-go is a module of its own (docs/consumers.md): ./... above skips it.
(cd examples/consumer-go && go vet ./...)
