// Package deploy holds what an operator runs sallyport with, beyond the
// binary: the container image (Dockerfile), a compose stack with two
// replicas behind a TCP load balancer (compose/), a Kubernetes set
// (kubernetes/), a hardened systemd unit (systemd/) and the sshd snippet for
// targets (sshd/). The manifests are not Go; this package exists for their
// test, which parses every one and checks that it names the ports and
// config keys the binary uses. deploy/sandbox and deploy/healthcheck are
// separate packages.
package deploy
