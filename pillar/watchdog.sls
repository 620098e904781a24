# Settings of role master for the Zabbix watchdog (salt/zabbix/watchdog;
# every key in salt/zabbix/defaults.yaml, zabbix:watchdog). The lab's only.
zabbix:
  lookup:
    watchdog:
      # Lab only: a check every 10 s (default 20 s, the least the watchdog
      # allows is 10) brings the problem mail of
      # tests/lab/test_monitoring_watchdog.py within ~30-40 s of the stop
      # instead of ~60-80 s, and the recovery within 10 s of the start. The
      # threshold (3 failed checks in a row, one mail per transition) and the
      # timeout stay the defaults; a site keeps 20 s (less load on mon1).
      interval: 10
