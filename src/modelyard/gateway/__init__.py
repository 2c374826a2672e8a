"""The local stack's one base URL: a streaming reverse proxy that sends the artifacts API to the artifacts
service and everything else to the tracking service, the way the Helm chart's ingress does in Kubernetes.

Artifact bytes therefore never pass through the tracking service. Bodies stream in both directions in
bounded memory; the gateway holds no state and does no parsing beyond the path prefix.
"""
