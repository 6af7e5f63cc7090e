// Command modelplane-health prints Flux's and Argo CD's verdicts on Kubernetes objects, computed by their
// own code rather than by a re-implementation: kstatus (sigs.k8s.io/cli-utils pkg/kstatus/status.Compute,
// what Flux's health checks call) and Argo CD's Lua health machinery (util/lua, ResourceHealthOverrides
// with our scripts as `resource.customizations.health.<group>_<kind>` overrides).
//
// Usage: modelplane-health -script modelplane.dev/ModelDeployment=FILE ... < objects.json
// stdin is a JSON array of objects; stdout is a JSON array of {"kstatus": {...}, "argocd": {...}}, one per
// object, each with "status" and "message" (and "error" when the library returned one).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	appv1 "github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	argolua "github.com/argoproj/argo-cd/v3/util/lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	Error   string `json:"error,omitempty"`
}

type verdicts struct {
	Kstatus verdict `json:"kstatus"`
	ArgoCD  verdict `json:"argocd"`
}

type scripts map[string]string

func (s scripts) String() string { return fmt.Sprint(map[string]string(s)) }

func (s scripts) Set(value string) error {
	key, path, found := strings.Cut(value, "=")
	if !found {
		return fmt.Errorf("want GROUP/KIND=FILE, got %q", value)
	}
	body, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s[key] = string(body)
	return nil
}

func judge(obj map[string]interface{}, overrides argolua.ResourceHealthOverrides) verdicts {
	u := &unstructured.Unstructured{Object: obj}
	var out verdicts
	if result, err := status.Compute(u); err != nil {
		out.Kstatus.Error = err.Error()
	} else {
		out.Kstatus = verdict{Status: result.Status.String(), Message: result.Message}
	}
	if health, err := overrides.GetResourceHealth(u); err != nil {
		out.ArgoCD.Error = err.Error()
	} else if health != nil {
		out.ArgoCD = verdict{Status: string(health.Status), Message: health.Message}
	}
	return out
}

func main() {
	given := scripts{}
	flag.Var(given, "script", "GROUP/KIND=FILE: the Lua health script Argo CD runs for that kind (repeatable)")
	flag.Parse()
	overrides := argolua.ResourceHealthOverrides{}
	for key, body := range given {
		overrides[key] = appv1.ResourceOverride{HealthLua: body}
	}
	// apimachinery's decoder, as client-go's: whole numbers become int64, which the accessors kstatus uses
	// require (encoding/json would make metadata.generation a float64).
	var objects []map[string]interface{}
	input, err := io.ReadAll(os.Stdin)
	if err == nil {
		err = utiljson.Unmarshal(input, &objects)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "modelplane-health: stdin is not a JSON array of objects: %v\n", err)
		os.Exit(2)
	}
	out := make([]verdicts, 0, len(objects))
	for _, obj := range objects {
		out = append(out, judge(obj, overrides))
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintf(os.Stderr, "modelplane-health: %v\n", err)
		os.Exit(1)
	}
}
