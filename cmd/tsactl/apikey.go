package main

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

// runAPIKey makes a new API key for the api-key filter: the key goes to
// the client, only its digest into the configuration file.
func runAPIKey(args []string) error {
	fs := flag.NewFlagSet("tsactl apikey", flag.ContinueOnError)
	name := fs.String("name", "", "the name the key is registered under (billing and the record call the client by it)")
	hashOnly := fs.Bool("hash", false, "read a key from standard input and print only its digest line")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: tsactl apikey --name NAME     make a new key and its configuration entry")
		fmt.Fprintln(fs.Output(), "       tsactl apikey --hash < KEYFILE  the digest of an existing key")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *hashOnly {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && line == "" {
			return fmt.Errorf("read the key from standard input: %w", err)
		}
		key := strings.TrimSpace(line)
		if key == "" {
			return errors.New("the key read from standard input is empty")
		}
		fmt.Println(apiKeyDigest(key))
		return nil
	}
	if *name == "" {
		return errors.New("apikey needs --name")
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	key := "chl_" + base64.RawURLEncoding.EncodeToString(raw)
	fmt.Fprintf(os.Stderr, "API key for %s (give it to the client; it is not stored anywhere):\n", *name)
	fmt.Println(key)
	fmt.Fprintf(os.Stderr, "\nconfiguration entry (under an api-key filter's keys):\n")
	fmt.Fprintf(os.Stderr, "  - name: %s\n    sha256: %s\n", *name, apiKeyDigest(key))
	return nil
}

func apiKeyDigest(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])
}
