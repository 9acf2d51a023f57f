package console_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/usagestream/usagestream/processors/console"
)

// The console is mounted beside the query API on one mux: the page reads
// /v1/ from its own origin.
func ExampleHandler() {
	h, err := console.Handler(console.Config{TokenRequired: true})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle(console.Path, h)
	// mux.Handle("/v1/", api.Handler()) // processors/query

	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/console/", nil))
	fmt.Println(w.Code, w.Header().Get("X-Frame-Options"))
	// Output: 200 DENY
}
