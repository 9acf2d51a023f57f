module github.com/usagestream/usagestream

go 1.26.8
