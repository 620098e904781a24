{#- Time sync on every machine (issue #13 item 7): Galera and TLS need
    clocks that agree. Where the machine keeps its own clock, chrony keeps
    it in sync with pillar common:lookup:time:servers; in a container (the
    lab's LXC) the clock is the host's, so nothing is installed and the
    state says why. The decision: _modules/lemp_time.py (plan). #}
{%- from 'common/map.jinja' import common with context %}
{%- set time = common.time %}
{%- set plan = salt['lemp_time.plan'](grains, time.mode) %}
{%- if plan.chrony %}

common-time-chrony-installed:
  pkg.installed:
    - name: {{ time.package }}

common-time-chrony-config-file-managed:
  file.managed:
    - name: {{ time.config }}
    - user: root
    - group: root
    - mode: '0644'
    - contents: |
        # Written by Salt (salt/common/time.sls): pillar common:lookup:time.
{%- for server in time.servers %}
        {{ time.source_type }} {{ server }} iburst
{%- endfor %}
        keyfile /etc/chrony/chrony.keys
        driftfile /var/lib/chrony/chrony.drift
        ntsdumpdir /var/lib/chrony
        logdir /var/log/chrony
        maxupdateskew 100.0
        rtcsync
        makestep {{ time.makestep }}
        leapsectz right/UTC
    - require:
      - pkg: common-time-chrony-installed

common-time-chrony-service-running:
  service.running:
    - name: {{ time.service }}
    - enable: True
    - watch:
      - file: common-time-chrony-config-file-managed
{%- else %}

common-time-host-clock-serves:
  test.succeed_without_changes:
    - name: {{ plan.why | json }}
{%- endif %}
