{#- Undo master.config and master.service: the Salt-managed configuration
    and its helpers go. The master keeps running on what it loaded; it
    serves no reactor after its next restart. Run it only to hand the
    master's configuration back to another tool. #}
{%- from 'master/map.jinja' import master with context %}

master-lemp-ha-files-absent:
  file.absent:
    - names:
      - {{ master.config_dir }}/{{ master.config_file }}
      - {{ master.checker }}
      - {{ master.restart.script }}
