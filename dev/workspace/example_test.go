package workspace_test

import (
	"fmt"
	"path/filepath"

	"github.com/ferry-go/ferry/dev/workspace"
)

// The repository's examples as a workspace: examples/ferry.work.yaml lists
// them, with the environment that moves them off their fixed ports (ferry dev
// puts them on its NATS).
func ExampleLoad() {
	ws, err := workspace.Load(filepath.Join("..", "..", "examples"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(filepath.Base(ws.File))
	for _, s := range ws.Services {
		fmt.Printf("%s: dir %s, %d args, %d env\n", s.Name, filepath.Base(s.Dir), len(s.Args), len(s.Env))
	}
	fmt.Println("config's HTTP:", ws.Services[3].Env["FERRY_TRANSPORTS_HTTP_ADDR"])
	// Output:
	// ferry.work.yaml
	// greeter: dir greeter, 0 args, 3 env
	// events: dir events, 0 args, 2 env
	// tracing: dir tracing, 6 args, 0 env
	// config: dir config, 0 args, 5 env
	// config's HTTP: 127.0.0.1:0
}
