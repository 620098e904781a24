{#- /etc/salt/master.d/50-lemp-ha.conf: folders, GPG pillar keys, reactor,
    ACLs, built by _modules/lemp_master.py (config) from map.jinja.
    It never lands invalid: the check_cmd loads it with the rest of master.d
    through Salt's own config loader and refuses auto-accepted keys, ACLs
    for other users, and missing folders or reactor files (a refused file
    is not written, the state fails naming why). #}
{%- from 'master/map.jinja' import master with context %}

master-config-checker-file-managed:
  file.managed:
    - name: {{ master.checker }}
    - source: salt://_modules/lemp_master.py
    - makedirs: True
    - mode: '0644'

{#- The extras folder (file_roots, module_dirs, the reactor's files) links
    the checkout's folders: the lab's provisioner makes the same links, an
    on-premises master gets them here, before the config that names them. #}
{%- for dir in master.extras_dirs %}

master-extras-{{ dir }}-linked-to-the-checkout:
  file.symlink:
    - name: {{ master.extras }}/{{ dir }}
    - target: {{ master.checkout }}/{{ dir }}
    - makedirs: True
    - require_in:
      - file: master-config-file-managed
{%- endfor %}

master-config-file-managed:
  file.managed:
    - name: {{ master.config_dir }}/{{ master.config_file }}
    - contents: {{ salt['lemp_master.render'](master) | json }}
    - mode: '0644'
    - check_cmd: {{ master.python }} {{ master.checker }} check
    - require:
      - file: master-config-checker-file-managed

{#- The lab's bootstrap file holds a subset of the same settings: removing
    it changes nothing the running master uses. #}
master-bootstrap-config-file-absent:
  file.absent:
    - name: {{ master.config_dir }}/{{ master.bootstrap_file }}
    - require:
      - file: master-config-file-managed

{#- Keys are pre-seeded (lemp_enrol.mint), never accepted on a shared
    secret: the old autosign grains folder goes with its secret. #}
master-autosign-grains-folder-absent:
  file.absent:
    - name: /etc/salt/autosign_grains
