"""A real Kubernetes 1.20 on this machine for tests/cluster: build the server binaries from Debian's source
package (`python -m tools.kube.build`) and run a throwaway single-node cluster inside a network namespace
(`tools.kube.cluster`). Not part of the framequeue package."""
