'use strict';
'require view';
'require form';
'require rpc';
'require uci';
'require poll';
'require dom';

// LuCI view of /etc/config/edgemq. Every option below is one option of the UCI schema
// (UCI.md in the edgemq repository); tests/packaging/check_luci.py checks both directions.

var callStatus = rpc.declare({
	object: 'edgemq',
	method: 'status',
	expect: { }
});

// How often the status section asks the daemon again.
var STATUS_POLL_S = 5;

var DURATION = /^\d+\s*(ms|s|m|h|d|w)?$/;
var SIZE = /^\d+\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?$/i;

function validDuration(section_id, value) {
	if (value == null || value === '' || DURATION.test(value))
		return true;
	return _('Expecting a duration such as "30s", "5m" or "7d"');
}

function validSize(section_id, value) {
	if (value == null || value === '' || SIZE.test(value))
		return true;
	return _('Expecting a size such as "512KiB" or "64MiB"');
}

function enabledFlag(s) {
	var o = s.option(form.Flag, 'enabled', _('Enabled'));
	o.default = '1';
	o.rmempty = false;
	return o;
}

// One row per bridge from `edgemq status --json` (via the rpcd plugin), or why there is none.
function bridgeRow(b) {
	var addr = b.address || '-';
	var state = b.connected
		? _('connected to %s since %t ago').format(addr, b.since_s_ago || 0)
		: _('disconnected (last address %s)').format(addr) +
		  (b.since_s_ago != null ? _(' since %t ago').format(b.since_s_ago) : '') +
		  (b.last_error ? ': ' + b.last_error : '');
	return E('tr', { 'class': 'tr' }, [
		E('td', { 'class': 'td', 'data-title': _('Bridge') }, b.name),
		E('td', { 'class': 'td', 'data-title': _('State') }, state),
		E('td', { 'class': 'td', 'data-title': _('Queued') },
			_('%d messages, %1024.2mB').format(b.queue_messages, b.queue_bytes)),
		E('td', { 'class': 'td', 'data-title': _('Oldest') },
			b.oldest_age_ms != null ? '%t'.format(Math.floor(b.oldest_age_ms / 1000)) : '-'),
		E('td', { 'class': 'td', 'data-title': _('Sent') }, String(b.sent)),
		E('td', { 'class': 'td', 'data-title': _('Acked') }, String(b.acked)),
		E('td', { 'class': 'td', 'data-title': _('Dropped') }, String(b.dropped)),
		E('td', { 'class': 'td', 'data-title': _('Not stored (disk)') }, String(b.storage_refused || 0)),
		E('td', { 'class': 'td', 'data-title': _('Duplicates') }, String(b.duplicates))
	]);
}

function renderStatus(res) {
	var st = res && res.status;
	if (!st || !Array.isArray(st.bridges))
		return E('div', { 'class': 'cbi-section', 'id': 'edgemq-status' }, [
			E('h3', _('Bridge status')),
			E('p', { 'class': 'alert-message warning' },
				_('edgemq is not running, or did not answer: %s').format((res && res.error) || _('no answer')))
		]);
	var head = [ _('Bridge'), _('State'), _('Queued'), _('Oldest'), _('Sent'), _('Acked'), _('Dropped'), _('Not stored (disk)'), _('Duplicates') ];
	var rows = st.bridges.map(bridgeRow);
	if (!rows.length)
		rows.push(E('tr', { 'class': 'tr placeholder' },
			E('td', { 'class': 'td', 'colspan': head.length }, _('No bridges configured'))));
	return E('div', { 'class': 'cbi-section', 'id': 'edgemq-status' }, [
		E('h3', _('Bridge status')),
		E('p', {}, _('edgemq %s, up %t, %d clients connected').format(st.version, st.uptime_s, st.clients)),
		E('table', { 'class': 'table' }, [
			E('tr', { 'class': 'tr table-titles' }, head.map(function(h) {
				return E('th', { 'class': 'th' }, h);
			}))
		].concat(rows))
	]);
}

return view.extend({
	load: function() {
		return Promise.all([
			uci.load('edgemq'),
			L.resolveDefault(callStatus(), {})
		]);
	},

	render: function(data) {
		var m, s, o;

		m = new form.Map('edgemq', _('edgemq MQTT broker'),
			_('A lightweight MQTT broker for the LAN with a store-and-forward bridge that never loses a message it acknowledged.'));

		// ---- main: top-level keys, [limits] and [auth]
		s = m.section(form.NamedSection, 'main', 'edgemq', _('General'));
		s.addremove = false;
		s.tab('general', _('General'));
		s.tab('limits', _('Limits'));
		s.tab('auth', _('Authentication'));

		o = s.taboption('general', form.Flag, 'enabled', _('Enabled'));
		o.default = '1';
		o.rmempty = false;
		o = s.taboption('general', form.Value, 'data_dir', _('Data directory'),
			_('Bridge queues, retained messages and sessions. Must be persistent (/var is RAM); use USB storage to spare the internal flash.'));
		o.placeholder = '/etc/edgemq/data';
		o = s.taboption('general', form.Value, 'user', _('Run as user'),
			_('Root privileges are dropped to this user after binding the ports.'));
		o.placeholder = 'edgemq';
		o = s.taboption('general', form.ListValue, 'log_level', _('Log level'));
		['error', 'warn', 'info', 'debug', 'trace'].forEach(function(l) { o.value(l); });
		o.default = 'info';
		o = s.taboption('general', form.Value, 'worker_threads', _('Worker threads'));
		o.datatype = 'range(1,16)';
		o.placeholder = _('one per core, at most 2');
		o = s.taboption('general', form.Value, 'sys_interval', _('$SYS interval'));
		o.placeholder = '10s';
		o.validate = validDuration;

		o = s.taboption('limits', form.Value, 'max_connections', _('Max connections'));
		o.datatype = 'uinteger';
		o.placeholder = '1024';
		o = s.taboption('limits', form.Value, 'max_packet_size', _('Max packet size'));
		o.placeholder = '1MiB';
		o.validate = validSize;
		o = s.taboption('limits', form.Value, 'connect_timeout', _('Connect timeout'));
		o.placeholder = '10s';
		o.validate = validDuration;
		o = s.taboption('limits', form.Value, 'max_inflight', _('Max inflight per client'));
		o.datatype = 'range(1,65535)';
		o.placeholder = '32';
		o = s.taboption('limits', form.Value, 'max_queued_messages', _('Max queued messages per client'));
		o.datatype = 'uinteger';
		o.placeholder = '1000';
		o = s.taboption('limits', form.ListValue, 'queue_full', _('When a client queue is full'));
		o.value('drop-oldest', _('Drop the oldest message'));
		o.value('drop-newest', _('Drop the new message'));
		o = s.taboption('limits', form.Value, 'max_keepalive', _('Max keepalive (s)'));
		o.datatype = 'range(0,65535)';
		o.placeholder = '65535';
		o = s.taboption('limits', form.Value, 'session_expiry', _('Session expiry'));
		o.placeholder = '7d';
		o.validate = validDuration;
		o = s.taboption('limits', form.Value, 'max_topic_alias', _('Max topic alias (MQTT 5)'));
		o.datatype = 'range(0,65535)';
		o.placeholder = '16';
		o = s.taboption('limits', form.Value, 'receive_maximum', _('Receive maximum (MQTT 5)'));
		o.datatype = 'range(1,65535)';
		o.placeholder = '64';

		o = s.taboption('auth', form.Value, 'password_file', _('Password file'),
			_('mosquitto_passwd format; edit with <code>edgemq passwd FILE USER</code>.'));
		o.placeholder = '/etc/edgemq/passwd';
		o = s.taboption('auth', form.Value, 'acl_file', _('ACL file'), _('Mosquitto acl_file format.'));
		o.placeholder = '/etc/edgemq/acl';

		// ---- users defined in UCI
		s = m.section(form.GridSection, 'user', _('Users'));
		s.anonymous = true;
		s.addremove = true;
		s.nodescriptions = true;
		enabledFlag(s);
		o = s.option(form.Value, 'username', _('Username'));
		o.rmempty = false;
		o = s.option(form.Value, 'password', _('Password'));
		o.password = true;
		o.modalonly = true;
		o = s.option(form.Value, 'password_hash', _('Password hash'),
			_('A mosquitto_passwd hash ($6$ or $7$) instead of a plain password.'));
		o.modalonly = true;

		// ---- listeners
		s = m.section(form.TypedSection, 'listener', _('Listeners'));
		s.addremove = true;
		s.anonymous = false;
		s.tab('general', _('General'));
		s.tab('tls', _('TLS'));
		s.tab('auth', _('Authentication'));
		o = s.taboption('general', form.Flag, 'enabled', _('Enabled'));
		o.default = '1';
		o.rmempty = false;
		o = s.taboption('general', form.Value, 'bind', _('Bind address'),
			_('"0.0.0.0:1883", "[::]:1883", "127.0.0.1:1883" or "unix:/run/edgemq/edgemq.sock".'));
		o.rmempty = false;
		o.placeholder = '0.0.0.0:1883';
		o = s.taboption('general', form.ListValue, 'allow_anonymous', _('Anonymous clients'));
		o.value('', _('Only on loopback and Unix sockets'));
		o.value('1', _('Allowed'));
		o.value('0', _('Refused'));
		o = s.taboption('tls', form.Value, 'tls_cert', _('Server certificate (PEM)'));
		o.placeholder = '/etc/edgemq/server.crt';
		o = s.taboption('tls', form.Value, 'tls_key', _('Server key (PEM)'));
		o.placeholder = '/etc/edgemq/server.key';
		o = s.taboption('tls', form.Value, 'tls_client_ca', _('Client CA (mutual TLS)'));
		o.placeholder = '/etc/edgemq/ca.crt';
		o = s.taboption('tls', form.Flag, 'tls_identity_as_username', _('Certificate CN as username'));
		o = s.taboption('auth', form.Value, 'password_file', _('Password file of this listener'));
		o = s.taboption('auth', form.Value, 'acl_file', _('ACL file of this listener'));

		// ---- bridges
		s = m.section(form.TypedSection, 'bridge', _('Bridges'),
			_('Store-and-forward bridges to central brokers.'));
		s.addremove = true;
		s.anonymous = false;
		s.tab('general', _('General'));
		s.tab('tls', _('TLS'));
		s.tab('queue', _('Queue'));
		s.tab('advanced', _('Advanced'));

		o = s.taboption('general', form.Flag, 'enabled', _('Enabled'));
		o.default = '1';
		o.rmempty = false;
		o = s.taboption('general', form.Value, 'name', _('Name'), _('Default: the section name.'));
		o = s.taboption('general', form.DynamicList, 'address', _('Addresses'), _('host:port, tried in order.'));
		o.rmempty = false;
		o = s.taboption('general', form.Value, 'client_id', _('Client id'));
		o = s.taboption('general', form.ListValue, 'protocol', _('Protocol'));
		o.value('mqtt311', 'MQTT 3.1.1');
		o.value('mqtt5', 'MQTT 5');
		o = s.taboption('general', form.Flag, 'clean_session', _('Clean session'));
		o = s.taboption('general', form.Value, 'keepalive', _('Keepalive'));
		o.placeholder = '60s';
		o.validate = validDuration;
		o = s.taboption('general', form.Value, 'username', _('Username'));
		o = s.taboption('general', form.Value, 'password', _('Password'));
		o.password = true;
		o = s.taboption('general', form.Value, 'password_file', _('Password file'));

		o = s.taboption('tls', form.Flag, 'tls', _('Use TLS'));
		o = s.taboption('tls', form.Value, 'tls_ca', _('CA'), _('"native" (system store), "bundled" or a PEM file.'));
		o.value('native');
		o.value('bundled');
		o.placeholder = 'native';
		o = s.taboption('tls', form.Value, 'tls_cert', _('Client certificate'));
		o = s.taboption('tls', form.Value, 'tls_key', _('Client key'));
		o = s.taboption('tls', form.Value, 'tls_server_name', _('Server name to verify'));
		o = s.taboption('tls', form.Flag, 'tls13_only', _('TLS 1.3 only'));
		o = s.taboption('tls', form.DynamicList, 'tls_alpn', _('ALPN protocols'));

		o = s.taboption('queue', form.Value, 'queue_max_bytes', _('Max size'));
		o.placeholder = '64MiB';
		o.validate = validSize;
		o = s.taboption('queue', form.Value, 'queue_max_age', _('Max age'));
		o.placeholder = '7d';
		o.validate = validDuration;
		o = s.taboption('queue', form.ListValue, 'queue_overflow', _('When full'));
		o.value('drop-oldest', _('Drop the oldest message'));
		o.value('drop-newest', _('Drop the new message'));
		o = s.taboption('queue', form.Value, 'queue_replay_rate', _('Replay rate (msg/s)'), _('Empty: no cap.'));
		o.datatype = 'uinteger';
		o = s.taboption('queue', form.ListValue, 'queue_durability', _('Durability'));
		o.value('always', _('always: on flash before the PUBACK'));
		o.value('outage', _('outage: on flash only while the uplink is down'));

		o = s.taboption('advanced', form.Flag, 'notifications', _('Notifications'));
		o.default = '1';
		// unchecked must be written as '0': an absent option means the default, which is on
		o.rmempty = false;
		o = s.taboption('advanced', form.Value, 'notification_topic', _('Notification topic'));
		o = s.taboption('advanced', form.Flag, 'try_private', _('Announce as bridge (try_private)'));
		o.default = '1';
		// unchecked must be written as '0': an absent option means the default, which is on
		o.rmempty = false;
		o = s.taboption('advanced', form.Flag, 'message_id_property', _('Message id property (MQTT 5)'));
		o = s.taboption('advanced', form.Value, 'inflight', _('Inflight'));
		o.datatype = 'range(1,65535)';
		o.placeholder = '64';
		o = s.taboption('advanced', form.Value, 'reconnect_min', _('First reconnect delay'));
		o.placeholder = '1s';
		o.validate = validDuration;
		o = s.taboption('advanced', form.Value, 'reconnect_max', _('Max reconnect delay'));
		o.placeholder = '60s';
		o.validate = validDuration;
		o = s.taboption('advanced', form.Value, 'failback_after', _('Fail back after'));
		o.placeholder = '5m';
		o.validate = validDuration;

		// ---- bridge topic rules
		s = m.section(form.GridSection, 'topic', _('Bridge topics'));
		s.anonymous = true;
		s.addremove = true;
		s.sortable = true;
		enabledFlag(s);
		o = s.option(form.ListValue, 'bridge', _('Bridge'));
		uci.sections('edgemq', 'bridge').forEach(function(b) {
			o.value(b.name || b['.name']);
		});
		o = s.option(form.Value, 'pattern', _('Pattern'));
		o.rmempty = false;
		o = s.option(form.ListValue, 'direction', _('Direction'));
		o.value('out', _('out (local to central)'));
		o.value('in', _('in (central to local)'));
		o.value('both', _('both'));
		o = s.option(form.ListValue, 'qos', _('QoS'));
		o.value('0');
		o.value('1');
		o.value('2');
		o.default = '1';
		o = s.option(form.Value, 'local_prefix', _('Local prefix'));
		o.modalonly = true;
		o = s.option(form.Value, 'remote_prefix', _('Remote prefix'));
		o.modalonly = true;
		o = s.option(form.Flag, 'coalesce', _('Coalesce'), _('While queued, keep only the newest message per topic.'));

		return m.render().then(function(mapEl) {
			var statusEl = E('div', {}, renderStatus(data[1]));
			poll.add(function() {
				return L.resolveDefault(callStatus(), {}).then(function(res) {
					dom.content(statusEl, renderStatus(res));
				});
			}, STATUS_POLL_S);
			return E([], [statusEl, mapEl]);
		});
	}
});
