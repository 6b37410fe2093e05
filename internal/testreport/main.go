package main

import (
	"fmt"
	"os"
)

func main() {
	sum, err := Summarize(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(2)
	}
	if !sum.OK() {
		os.Exit(1)
	}
}
