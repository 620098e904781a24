{#- Security updates, on every machine (issue #13 item 7, docs/security.md
    "Security updates"): nothing is installed automatically, because a
    package's own restart on two Galera nodes or both load balancers at
    once is an outage; orch.patch installs them one node at a time, out of
    service. needrestart tells it afterwards which services still run the
    old code: in list mode only, so that no apt run (a highstate installing
    a package, an operator's apt-get) restarts a service behind its back. #}
{%- from 'common/map.jinja' import common with context %}
{%- set updates = common.updates %}

common-updates-needrestart-lists-only:
  file.managed:
    - name: {{ updates.needrestart_config }}
    - user: root
    - group: root
    - mode: '0644'
    - makedirs: True
    - contents: |
        # Written by Salt (salt/common/updates.sls); do not edit.
        # List what needs a restart, never restart it: orch.patch does,
        # one node at a time (docs/security.md "Security updates").
        $nrconf{restart} = 'l';

{#- After its configuration: the package's apt hook then lists from the
    first run on. #}
common-updates-needrestart-installed:
  pkg.installed:
    - pkgs: {{ updates.packages | json }}
    - require:
      - file: common-updates-needrestart-lists-only

common-updates-apt-lists-refreshed-nothing-installed:
  file.managed:
    - name: {{ updates.apt_periodic_config }}
    - user: root
    - group: root
    - mode: '0644'
    - contents: |
        // Written by Salt (salt/common/updates.sls); do not edit.
        // Refresh the package lists daily; download and install nothing:
        // orch.patch installs security updates one node at a time.
        APT::Periodic::Update-Package-Lists "1";
        APT::Periodic::Download-Upgradeable-Packages "0";
        APT::Periodic::Unattended-Upgrade "0";
