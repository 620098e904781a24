{%- from 'garbd/map.jinja' import garbd with context %}
{%- from 'galera/map.jinja' import galera with context %}
{#- garbd speaks Galera's group protocol, so it uses the Galera CA like the
    data nodes, at the same stage of a CA move (galera:lookup:tls:stage;
    _modules/galera.py decides which pillar keys). The files come from the
    pillar: check they are there before anything is written. #}
{%- set tls_sources = salt['galera.tls_sources'](galera.tls.stage) %}
{%- set trusted = [] %}
{%- for key in tls_sources.ca %}{% do trusted.append(salt['lemp_secret.require'](key)) %}{% endfor %}
{%- for key in (tls_sources.cert, tls_sources.key) %}{% do salt['lemp_secret.require'](key) %}{% endfor %}

include:
  - garbd.package

garbd-system-user-present:
  user.present:
    - name: {{ garbd.user }}
    - system: True
    - usergroup: True
    - home: /nonexistent
    - createhome: False
    - shell: /usr/sbin/nologin

garbd-ssl-directory-present:
  file.directory:
    - name: {{ garbd.ssl_dir }}
    - user: root
    - group: {{ garbd.user }}
    - mode: '0750'
    - makedirs: True
    - require:
      - user: garbd-system-user-present

garbd-ssl-ca-managed:
  file.managed:
    - name: {{ garbd.ssl_dir }}/ca.pem
    - contents: {{ salt['galera.tls_bundle'](trusted) | json }}
    - user: root
    - group: {{ garbd.user }}
    - mode: '0644'
    - require:
      - file: garbd-ssl-directory-present
{%- for name, key, mode in [('cert.pem', tls_sources.cert, '0644'), ('key.pem', tls_sources.key, '0640')] %}

garbd-ssl-{{ name | replace('.pem', '') }}-managed:
  file.managed:
    - name: {{ garbd.ssl_dir }}/{{ name }}
    - contents_pillar: {{ key }}
    - user: root
    - group: {{ garbd.user }}
    - mode: '{{ mode }}'
    - show_changes: {{ name != 'key.pem' }}
    - require:
      - file: garbd-ssl-directory-present
{%- endfor %}

garbd-config-file-managed:
  file.managed:
    - name: {{ garbd.config_file }}
    - source: salt://garbd/files/garb.jinja
    - template: jinja
    - context:
        garbd: {{ garbd | json }}
        nodes: {{ galera.data_nodes | map(attribute='address') | list | json }}
        cluster_name: {{ galera.cluster_name | json }}
        evs_options: {{ galera.evs_options | json }}
    - user: root
    - group: root
    - mode: '0644'
    - require:
      - pkg: garbd-package-installed

garbd-systemd-dropin-managed:
  file.managed:
    - name: /etc/systemd/system/{{ garbd.service }}.service.d/lemp-ha.conf
    - makedirs: True
    - contents: |
        # Managed by Salt (salt/garbd/config.sls).
        [Service]
        # our own user, who alone can read the TLS key (Debian: nobody)
        User={{ garbd.user }}
        Group={{ garbd.user }}
        # garbd saves its view of the cluster (gvwstate.dat) in its working
        # directory: one it owns, not Debian's / (Permission denied at every
        # view change otherwise)
        StateDirectory=garb
        WorkingDirectory=/var/lib/garb
        # garbd exits when it cannot reach a Primary component (cluster not
        # up yet, full outage): keep trying so that it rejoins by itself.
        Restart=on-failure
        RestartSec=5
    - user: root
    - group: root
    - mode: '0644'

{#- systemd does not notice a new drop-in directory by itself. #}
garbd-systemd-units-reloaded:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: garbd-systemd-dropin-managed
