// Prints the kstatus status (sigs.k8s.io/cli-utils/pkg/kstatus, the library Flux's health checks use) of
// each object read from stdin: a JSON array of objects, or one object. One JSON line per object:
// {"kind", "namespace", "name", "status", "message"}.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type result struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Status    string `json:"status"`
	Message   string `json:"message"`
}

func main() {
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("reading stdin: %v", err)
	}
	var objects []map[string]interface{}
	if trimmed := bytes.TrimSpace(input); len(trimmed) > 0 && trimmed[0] == '[' {
		// utiljson keeps whole numbers as int64, as unstructured objects hold them (generation).
		err = utiljson.Unmarshal(trimmed, &objects)
	} else {
		var one map[string]interface{}
		err = utiljson.Unmarshal(trimmed, &one)
		objects = append(objects, one)
	}
	if err != nil {
		fail("decoding objects: %v", err)
	}
	out := json.NewEncoder(os.Stdout)
	for _, object := range objects {
		u := &unstructured.Unstructured{Object: object}
		computed, err := status.Compute(u)
		if err != nil {
			fail("computing the status of %s %s: %v", u.GetKind(), u.GetName(), err)
		}
		if err := out.Encode(result{Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName(), Status: computed.Status.String(), Message: computed.Message}); err != nil {
			fail("writing: %v", err)
		}
	}
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "kstatus: "+format+"\n", args...)
	os.Exit(1)
}
