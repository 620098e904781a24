{#- The application on a web node: release app:version unpacked and made
    current. Its migration needs the database endpoint on the VIP, so it
    runs from the orchestrations once the load balancers are up
    (orch.site, orch.deploy), once per release, on the first web node.
    webapp.cron: the app's scheduled jobs, once per schedule across the tier. #}
include:
  - webapp.release
  - webapp.switch
  - webapp.cron
