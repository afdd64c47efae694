// Command kubectl is the upstream kubectl, built from k8s.io/kubectl at the
// same release as the local kube-apiserver so the two never skew.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
)

func main() {
	os.Exit(cli.Run(cmd.NewDefaultKubectlCommand()))
}
