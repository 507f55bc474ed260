// Command tsactl is Chronolog's client and operator tool, one file per
// subcommand.
package main

import (
	"fmt"
	"os"
)

const usage = `usage: tsactl <command> [flags]

commands:
  request FILE   make a TimeStampReq for FILE, send it, save the reply
  verify         check a reply against the data or the query and a CA
  bench          load a TSA and print tokens/s, latency percentiles and errors
  calibrate URL  measure the TSA's clock against ours: genTime against query and reply times
  log            check the transparency log: verify a token's proof, monitor, audit
  apikey         make an API key for the api-key filter, and its configuration entry
  replay         rebuild read models from the event store, to a position or a time, and check them
  export         write a period's compliance bundle (events, tokens, log proofs, timestamped manifest), or verify one
  hsm            the signing keys' lifecycle in a PKCS#11 token: init-token, keygen, csr, import-cert, list, retire, speed

Run 'tsactl <command> -h' for its flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmds := map[string]func([]string) error{
		"request":   runRequest,
		"verify":    runVerify,
		"bench":     runBench,
		"calibrate": runCalibrate,
		"log":       runLog,
		"apikey":    runAPIKey,
		"hsm":       runHSM,
		"replay":    runReplay,
		"export":    runExport,
	}
	cmd, ok := cmds[os.Args[1]]
	if !ok {
		if a := os.Args[1]; a == "-h" || a == "--help" || a == "help" {
			fmt.Print(usage)
			return
		}
		fmt.Fprintf(os.Stderr, "tsactl: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err := cmd(os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "tsactl:", err)
		os.Exit(1)
	}
}
