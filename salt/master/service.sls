{#- salt-master runs and starts at boot. A changed configuration is NOT
    applied with `watch` nor an immediate restart: this state runs in a job
    the master itself serves (the highstate of orch.site's master tier, run
    by a `salt-run` process the restart would cut off from its returns, as
    Salt's FAQ warns for the minion). Instead a transient systemd timer,
    outside the minion's process tree, runs the restart script once no
    `salt-run` is left (at most restart:wait_max seconds): the orchestration
    finishes on the old configuration, the master restarts after it. The
    script checks the file again first. ./lab up waits for it. #}
{%- from 'master/map.jinja' import master with context %}
include:
  - master.config

master-restart-script-file-managed:
  file.managed:
    - name: {{ master.restart.script }}
    - source: salt://master/files/lemp-ha-salt-master-restart.sh
    - template: jinja
    - mode: '0755'

master-service-running:
  service.running:
    - name: {{ master.service }}
    - enable: True
    - require:
      - file: master-config-file-managed

master-restart-deferred-until-no-run-uses-the-master:
  cmd.run:
    - name: >-
        systemctl is-active -q {{ master.restart.unit }}.timer {{ master.restart.unit }}.service
        || systemd-run --quiet --collect --unit={{ master.restart.unit }}
        --on-active={{ master.restart.delay }} --timer-property=AccuracySec=1s {{ master.restart.script }}
    - onchanges:
      - file: master-config-file-managed
    - require:
      - file: master-restart-script-file-managed
      - service: master-service-running
