{#- SSH with keys only, on every machine (issue #13 item 7): a drop-in that
    sshd reads before its own defaults (first value wins), so no package
    update of sshd_config undoes it. Who may reach port 22 at all is the
    firewall's job (salt/firewall: the admin networks; the backup store on
    the data nodes). #}
{%- from 'common/map.jinja' import common with context %}
{%- set ssh = common.ssh %}

common-ssh-server-installed:
  pkg.installed:
    - name: {{ ssh.package }}

common-ssh-keys-only-config-file-managed:
  file.managed:
    - name: {{ ssh.config }}
    - user: root
    - group: root
    - mode: '0644'
    - contents: |
        # Written by Salt (salt/common/ssh.sls); do not edit.
{%- for key, value in ssh.settings | dictsort %}
        {{ key }} {{ value }}
{%- endfor %}
    # a file sshd cannot parse never lands
    - check_cmd: {{ ssh.check_cmd }}
    - require:
      - pkg: common-ssh-server-installed

common-ssh-service-running:
  service.running:
    - name: {{ ssh.service }}
    - enable: True
    - require:
      - file: common-ssh-keys-only-config-file-managed

{#- Applied on content by the next successful run too, also when the run
    that wrote it failed (_modules/lemp_service.py). A reload keeps the
    sessions that are open. #}
common-ssh-runs-its-current-config:
  lemp_service.config_loaded:
    - name: {{ ssh.service }}
    - paths: [{{ ssh.config }}]
    - verify_cmd: /usr/sbin/sshd -t
    - action: reload
    - require:
      - service: common-ssh-service-running
