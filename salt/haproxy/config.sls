{#- haproxy.cfg: HTTPS on the VIP, web backends from the Salt mine (refuses an
    empty list), galera and redis TCP endpoints on the VIP, stats page and
    admin socket. #}
{%- from 'haproxy/map.jinja' import haproxy with context %}
{%- set topology = salt['pillar.get']('topology') or raise('haproxy: pillar topology is missing') %}
{%- set vip_cert = salt['lemp_secret.require']('tls:vip:cert') %}
{%- set vip_key = salt['lemp_secret.require']('tls:vip:key') %}
{%- set ca_cert = salt['lemp_secret.require']('tls:ca_cert') %}
{%- set redis_password = salt['lemp_secret.require']('sessions:redis_password') if haproxy.redis.enabled else '' %}
{%- set web_names = topology.roles.web.members | map(attribute='name') | list %}
{%- set db_nodes = topology.roles.db.members %}
{%- if not web_names %}
{{-   raise('haproxy: the topology has no machine with role web: refusing to write an empty backend') }}
{%- endif %}
{#- Web nodes publish their lab address in the mine (pillar mine_functions
    web_address); a node of the topology with no mine entry is left out and
    named in the config. No entry at all: fail, never an empty backend. #}
{%- set mined = salt['mine.get'](web_names | join(','), haproxy.mine_function, tgt_type='list') %}
{%- set web_nodes = [] %}
{%- set missing = [] %}
{%- for name in web_names %}
{%-   set addrs = mined.get(name) or [] %}
{%-   if addrs is string %}{% set addrs = [addrs] %}{% endif %}
{%-   if addrs %}{% do web_nodes.append({'name': name, 'address': addrs[0]}) %}{% else %}{% do missing.append(name) %}{% endif %}
{%- endfor %}
{%- if not web_nodes %}
{{-   raise('haproxy: the Salt mine has no ' ~ haproxy.mine_function ~ ' for any web node (' ~ (web_names | join(', ')) ~ '): apply the web tier and run mine.update on it first; refusing to write an empty backend') }}
{%- endif %}
{%- if haproxy.galera.enabled and not db_nodes %}
{{-   raise('haproxy: galera is enabled but the topology has no machine with role db') }}
{%- endif %}
include:
  - haproxy.package

haproxy-tls-directory-present:
  file.directory:
    - name: {{ haproxy.tls_dir }}
    - user: root
    - group: haproxy
    - mode: '0750'
    - require:
      - pkg: haproxy-package-installed

haproxy-vip-certificate-file-managed:
  file.managed:
    - name: {{ haproxy.tls_dir }}/vip.pem
    - contents: {{ (vip_cert.rstrip('\n') ~ '\n' ~ vip_key.rstrip('\n') ~ '\n') | json }}
    - user: root
    - group: haproxy
    - mode: '0640'
    - show_changes: False
    - require:
      - file: haproxy-tls-directory-present

haproxy-ca-certificate-file-managed:
  file.managed:
    - name: {{ haproxy.tls_dir }}/ca.pem
    - contents: {{ ca_cert | json }}
    - mode: '0644'
    - require:
      - file: haproxy-tls-directory-present

haproxy-config-file-managed:
  file.managed:
    - name: {{ haproxy.config }}
    - source: salt://haproxy/files/haproxy.cfg.j2
    - template: jinja
    - show_changes: False
    - user: root
    - group: haproxy
    - mode: '0640'
    - context:
        haproxy: {{ haproxy | json }}
        network: {{ topology.network | json }}
        web_nodes: {{ web_nodes | json }}
        missing_web_nodes: {{ missing | json }}
        db_nodes: {{ db_nodes | json }}
        redis_password: {{ redis_password | json }}
    - check_cmd: /usr/sbin/haproxy -c -f
    - require:
      - file: haproxy-vip-certificate-file-managed
      - file: haproxy-ca-certificate-file-managed
