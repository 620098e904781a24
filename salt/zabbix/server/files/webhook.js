// lemp-ha webhook media type (Zabbix 6.0): posts the event as JSON to the
// parameter `url`. The media type is created by lemp_zabbix.ensure_webhook
// (_modules/lemp_zabbix.py), which passes the other parameters as macros:
// host, severity, problem, status (PROBLEM or RESOLVED), event_id, event_value.
// A non-2xx answer fails the alert, so Zabbix shows it and retries it.
var params = JSON.parse(value);
if (!/^https?:\/\/[^\s\/]+/.test(params.url || '')) {
    throw 'lemp-ha webhook: parameter url is not an http(s) URL: ' + params.url;
}
var body = {
    host: params.host,
    severity: params.severity,
    problem: params.problem,
    status: params.status,
    event_id: params.event_id,
    event_value: params.event_value
};
var request = new HttpRequest();
request.addHeader('Content-Type: application/json');
var response = request.post(params.url, JSON.stringify(body));
var code = request.getStatus();
Zabbix.log(4, '[lemp-ha webhook] ' + params.url + ' answered ' + code);
if (code < 200 || code >= 300) {
    throw 'lemp-ha webhook: ' + params.url + ' answered HTTP ' + code + ': ' + String(response).substring(0, 200);
}
return 'OK';
