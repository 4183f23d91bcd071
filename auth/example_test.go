package auth_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/pipelinehq/pipeline/auth"
)

// Local mode: the queue signs deliveries with a LocalIssuer, the service
// verifies them with the same Verifier as in GCP.
func ExampleLocalIssuer() {
	ctx := context.Background()
	const serviceURL = "http://127.0.0.1:8080"
	issuer, err := auth.NewLocalIssuer(serviceURL+"/local-issuer", "local-queue@pipeline.local")
	if err != nil {
		panic(err)
	}
	verifier, err := auth.NewVerifier(ctx, auth.Config{
		Audience: serviceURL,
		Issuer:   issuer.Issuer(),
		Allowed:  []string{issuer.Email()},
		KeySet:   issuer.KeySet(),
	})
	if err != nil {
		panic(err)
	}

	// The queue, delivering a step:
	token, err := issuer.Token(ctx, serviceURL)
	if err != nil {
		panic(err)
	}
	r := httptest.NewRequest("POST", serviceURL+"/pipeline/steps/fetch", nil)
	r.Header.Set("Authorization", "Bearer "+token)

	// The service, receiving it:
	caller, err := verifier.Authenticate(r)
	fmt.Println(caller.Email, err)
	// Output: local-queue@pipeline.local <nil>
}
