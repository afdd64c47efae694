// Command dd-apiserver runs a real kube-apiserver with an embedded etcd in one
// process, for dd-preview's local cluster and tests. Only two flags are ours
// (--etcd-data-dir, --etcd-port); every other flag goes to kube-apiserver as is.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
	_ "time/tzdata"
)

func main() {
	ours := flag.NewFlagSet("dd-apiserver", flag.ContinueOnError)
	dataDir := ours.String("etcd-data-dir", "", "directory for the embedded etcd's data")
	etcdPort := ours.Int("etcd-port", 0, "loopback port for the embedded etcd's clients")
	var rest []string
	var mine []string
	for _, a := range os.Args[1:] {
		if strings.HasPrefix(a, "--etcd-data-dir=") || strings.HasPrefix(a, "--etcd-port=") {
			mine = append(mine, a)
		} else {
			rest = append(rest, a)
		}
	}
	if err := ours.Parse(mine); err != nil || *dataDir == "" || *etcdPort == 0 {
		fmt.Fprintln(os.Stderr, "dd-apiserver: --etcd-data-dir and --etcd-port are required")
		os.Exit(2)
	}

	etcd, err := startEtcd(*dataDir, *etcdPort)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dd-apiserver: etcd:", err)
		os.Exit(1)
	}
	defer etcd.Close()

	cmd := app.NewAPIServerCommand()
	cmd.SetArgs(append(rest, fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", *etcdPort)))
	code := cli.Run(cmd)
	etcd.Close()
	os.Exit(code)
}

// startEtcd serves etcd on loopback only, as a single member whose peer port
// is picked by the kernel; fsync is off because the data is disposable test state.
func startEtcd(dir string, port int) (*embed.Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Name = "dd-local"
	cfg.Dir = dir
	cfg.LogLevel = "error"
	cfg.UnsafeNoFsync = true
	client := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", port)}
	peerPort, err := freePort()
	if err != nil {
		return nil, err
	}
	peer := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", peerPort)}
	cfg.ListenClientUrls = []url.URL{client}
	cfg.AdvertiseClientUrls = []url.URL{client}
	cfg.ListenPeerUrls = []url.URL{peer}
	cfg.AdvertisePeerUrls = []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, err
	}
	<-e.Server.ReadyNotify()
	return e, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
