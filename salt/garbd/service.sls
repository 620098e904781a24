{%- from 'garbd/map.jinja' import garbd with context %}
{%- from 'galera/map.jinja' import galera with context %}

include:
  - garbd.config
{%- if galera.garbd_wanted and galera.data_nodes %}

garbd-service-enabled-at-boot:
  service.enabled:
    - name: {{ garbd.service }}
    - require:
      - file: garbd-config-file-managed

{#- Started only when a data node's Galera port answers: on a first deploy
    the cluster does not exist yet when the database tier's highstate runs;
    the orchestration applies this state again after the bootstrap. #}
{%- set probe = "bash -c 'for a in " ~ (galera.data_nodes | map(attribute='address') | join(' ')) ~ "; do timeout 3 bash -c \"exec 3<>/dev/tcp/$a/" ~ garbd.port ~ "\" 2>/dev/null && exit 0; done; exit 1'" %}
garbd-service-running:
  service.running:
    - name: {{ garbd.service }}
    - onlyif:
      - {{ probe | json }}
    - require:
      - service: garbd-service-enabled-at-boot
      - file: garbd-systemd-dropin-managed
      - cmd: garbd-systemd-units-reloaded
      - file: garbd-ssl-key-managed
    - watch:
      - file: garbd-config-file-managed
      - file: garbd-systemd-dropin-managed
      - file: garbd-ssl-ca-managed
      - file: garbd-ssl-cert-managed
      - file: garbd-ssl-key-managed
{%- else %}

garbd-service-dead-odd-number-of-data-nodes:
  service.dead:
    - name: {{ garbd.service }}
    - enable: False
    - require:
      - pkg: garbd-package-installed
{%- endif %}
