{#- Undo common.hosts (packages stay: other software may need them). #}
{%- set topology = salt['pillar.get']('topology') %}
{%- for host in topology.hosts | sort(attribute='name') %}

common-hosts-entry-{{ host.name }}-absent:
  host.absent:
    - name: {{ host.name }}
    - ip: {{ host.address }}
{%- endfor %}

{#- Undo common.ssh: sshd back on Debian's own settings. #}
{%- from 'common/map.jinja' import common with context %}

common-ssh-keys-only-config-file-absent:
  file.absent:
    - name: {{ common.ssh.config }}

common-ssh-reloaded-without-the-drop-in:
  service.running:
    - name: {{ common.ssh.service }}
    - reload: True
    - watch:
      - file: common-ssh-keys-only-config-file-absent

{#- Undo common.updates' files (needrestart stays: a package like the others). #}

common-updates-needrestart-config-absent:
  file.absent:
    - name: {{ common.updates.needrestart_config }}

common-updates-apt-periodic-config-absent:
  file.absent:
    - name: {{ common.updates.apt_periodic_config }}
{#- Undo common.time: chrony goes with the configuration Salt gave it
    (a machine left to another tool's time sync). Nothing is installed in
    a container: nothing to undo there. #}
common-time-chrony-removed:
  pkg.removed:
    - name: {{ common.time.package }}
