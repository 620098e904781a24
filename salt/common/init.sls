include:
  - common.package
  - common.hosts
