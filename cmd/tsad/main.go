// Command tsad is the Chronolog time-stamp authority server. It only wires:
// flags and environment → adapters → the domain's timestamp service.
//
//	tsad dev     start on the embedded default with a development CA
//	tsad serve   start with a given key and certificate
package main

import (
	"fmt"
	"os"
)

const usage = `usage: tsad <command> [flags]

commands:
  dev     run on the embedded default store with a DEVELOPMENT CA created on first start
  serve   run with an existing TSA key and certificate (--key, --cert, --chain)

Run 'tsad <command> -h' for its flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "dev":
		err = runDev(os.Args[2:])
	case "serve":
		err = runServe(os.Args[2:])
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "tsad: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tsad:", err)
		os.Exit(1)
	}
}
