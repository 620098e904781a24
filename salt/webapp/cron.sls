{#- The app's scheduled jobs (pillar app:cron), each run once per schedule
    across the web tier: every web node has a systemd timer per job, whose
    service runs lemp-cron-once; that takes the slot's lock in the sessions
    Redis (through the VIP) and runs the command only on the node that got
    it, so no node is special and any one may be down (docs/your-app.md,
    "Cron"). _modules/lemp_cron.py checks the jobs (a schedule that
    systemd-analyze does not parse stops the render: nothing changes) and
    plans the units; lemp-cron-* units no longer planned are removed. #}
{%- import_yaml 'webapp/defaults.yaml' as defaults %}
{%- from 'webapp/map.jinja' import app, app_dir with context %}
{%- from 'phpfpm/map.jinja' import phpfpm with context %}
{%- set cron = defaults.cron %}
{%- set plan = salt['lemp_cron.plan'](app, {
      'node': grains['id'],
      'user': app.user,
      'app_dir': app_dir,
      'redis_host': salt['pillar.get']('topology:network:internal_vip', ''),
      'redis_port': phpfpm.sessions.port | int,
      'lock_ttl': cron.lock_ttl | int,
      'timeout': cron.timeout | int,
      'wrapper': cron.wrapper,
      'command_dir': cron.command_dir,
      'auth_file': cron.auth_file,
    }, salt['file.find'](cron.unit_dir, name='lemp-cron-*', maxdepth=1)) %}

webapp-cron-redis-cli-installed:
  pkg.installed:
    - name: redis-tools

webapp-cron-lemp-cron-once-file-managed:
  file.managed:
    - name: {{ cron.wrapper }}
    - source: salt://webapp/files/lemp-cron-once
    - user: root
    - group: root
    - mode: '0755'

{#- The Redis user and its password (one a line), only where a job needs them. #}
webapp-cron-redis-password-file-managed:
{%- if plan.jobs %}
  file.managed:
    - name: {{ cron.auth_file }}
    - contents: {{ (phpfpm.sessions.user ~ '\n' ~ salt['lemp_secret.require']('sessions:redis_password') ~ '\n') | json }}
    - user: root
    - group: root
    - mode: '0600'
    - makedirs: True
    - show_changes: False
{%- else %}
  file.absent:
    - name: {{ cron.auth_file }}
{%- endif %}

{%- for job in plan.jobs %}

webapp-cron-{{ job.unit }}-command-file-managed:
  file.managed:
    - name: {{ cron.command_dir }}/{{ job.unit }}.command
    - contents: {{ job.command | json }}
    - user: root
    - group: {{ app.group }}
    - mode: '0640'
    - makedirs: True

webapp-cron-{{ job.unit }}-service-unit-file-managed:
  file.managed:
    - name: {{ cron.unit_dir }}/{{ job.unit }}.service
    - contents: {{ job.service | json }}
    - user: root
    - group: root
    - mode: '0644'

webapp-cron-{{ job.unit }}-timer-unit-file-managed:
  file.managed:
    - name: {{ cron.unit_dir }}/{{ job.unit }}.timer
    - contents: {{ job.timer | json }}
    - user: root
    - group: root
    - mode: '0644'
{%- endfor %}

{#- Command files of removed jobs go with the directory's clean. The job's
    user reads its command (sh runs the file, so the command is not in ps);
    it cannot change it. #}
webapp-cron-command-directory-holds-only-planned-jobs:
  file.directory:
    - name: {{ cron.command_dir }}
    - user: root
    - group: {{ app.group }}
    - mode: '0750'
    - makedirs: True
    - clean: True
{%- if plan.jobs %}
    - require:
{%-   for job in plan.jobs %}
      - file: webapp-cron-{{ job.unit }}-command-file-managed
{%-   endfor %}
{%- endif %}

{%- for name in plan.stale_timers %}

webapp-cron-stale-{{ name }}-stopped-and-disabled:
  service.dead:
    - name: {{ name }}
    - enable: False
    - require_in:
      - file: webapp-cron-stale-{{ name }}-unit-file-absent
{%- endfor %}

{%- for name in plan.stale %}

webapp-cron-stale-{{ name }}-unit-file-absent:
  file.absent:
    - name: {{ cron.unit_dir }}/{{ name }}
{%- endfor %}

{%- if plan.jobs or plan.stale %}

webapp-cron-systemd-reloaded-after-unit-changes:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
{%-   for job in plan.jobs %}
      - file: webapp-cron-{{ job.unit }}-service-unit-file-managed
      - file: webapp-cron-{{ job.unit }}-timer-unit-file-managed
{%-   endfor %}
{%-   for name in plan.stale %}
      - file: webapp-cron-stale-{{ name }}-unit-file-absent
{%-   endfor %}
{%- endif %}

{%- for job in plan.jobs %}

{#- Restarted when its file changes, so a new schedule applies at once. #}
webapp-cron-{{ job.unit }}-timer-running:
  service.running:
    - name: {{ job.unit }}.timer
    - enable: True
    - require:
      - pkg: webapp-cron-redis-cli-installed
      - file: webapp-cron-lemp-cron-once-file-managed
      - file: webapp-cron-redis-password-file-managed
      - file: webapp-cron-{{ job.unit }}-command-file-managed
      - file: webapp-cron-{{ job.unit }}-service-unit-file-managed
      - cmd: webapp-cron-systemd-reloaded-after-unit-changes
    - watch:
      - file: webapp-cron-{{ job.unit }}-timer-unit-file-managed
{%- endfor %}
