include:
  - phpfpm.package
  - phpfpm.config
  - phpfpm.service
