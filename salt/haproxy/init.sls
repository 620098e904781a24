include:
  - haproxy.package
  - haproxy.config
  - haproxy.service
