use super::*;
use crate::proto::auth::AuthConfig as ProtoAuthConfig;
use crate::proto::lcp::LcpConfig;

const EXAMPLE: &str = include_str!("../../examples/nasd-minimal.toml");

/// The smallest valid file.
const MINIMAL: &str = r#"
[network]
local_ip = "10.0.0.1"
pool = "10.0.0.100-10.0.0.199"

[[port]]
device = "/dev/ttyUSB0"
"#;

fn parse(text: &str) -> Config {
    match Config::from_str(text, "nasd.toml") {
        Ok(c) => c,
        Err(e) => panic!("unexpected errors:\n{e}"),
    }
}

fn problems(text: &str) -> Vec<Problem> {
    match Config::from_str(text, "nasd.toml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.problems().to_vec(),
    }
}

/// Asserts that `text` is refused with exactly one problem, on `line`, whose message
/// holds `needle`; returns the whole formatted problem.
#[track_caller]
fn one_error(text: &str, line: usize, needle: &str) -> String {
    let p = problems(text);
    assert_eq!(p.len(), 1, "expected one problem, got {p:#?}");
    assert_eq!(p[0].line, Some(line), "wrong line: {}", p[0]);
    assert!(
        p[0].message.contains(needle),
        "{:?} lacks {needle:?}",
        p[0].message
    );
    p[0].to_string()
}

/// MINIMAL with `network` lines in [network] and `port` lines in its [[port]]; the
/// added network lines start at line 5, the port lines at line 8.
fn with(network: &str, port: &str) -> String {
    format!(
        "[network]\nlocal_ip = \"10.0.0.1\"\npool = \"10.0.0.100-10.0.0.199\"\n#\n{network}\n\
         [[port]]\ndevice = \"/dev/ttyUSB0\"\n{port}\n"
    )
}

/// MINIMAL plus one more table (starting at line 7).
fn plus(table: &str) -> String {
    format!(
        "[network]\nlocal_ip = \"10.0.0.1\"\npool = \"10.0.0.100-10.0.0.199\"\n\
         [[port]]\ndevice = \"/dev/ttyUSB0\"\n\n{table}\n"
    )
}

#[test]
fn the_example_file_is_valid() {
    let c = parse(EXAMPLE);
    assert_eq!(c.network.local_ip, Ipv4Addr::new(10, 0, 0, 1));
    assert_eq!(c.network.pool.len(), 100);
    assert_eq!(c.network.dns, vec![Ipv4Addr::new(10, 0, 0, 1)]);
    assert_eq!(c.network.masquerade.as_deref(), Some("eth0"));
    assert_eq!(c.ppp.idle_timeout, Some(Duration::from_secs(900)));
    assert_eq!(c.control.group.as_deref(), Some("dialout"));
    assert_eq!(c.ports.len(), 2);
    let modem = &c.ports[0];
    assert_eq!(modem.name, "ttyUSB0");
    assert_eq!(modem.rings, 2);
    assert_eq!(modem.flow_control, FlowControl::RtsCts);
    let direct = &c.ports[1];
    assert_eq!(direct.name, "console");
    assert_eq!(direct.mode, LineMode::Direct);
    assert_eq!(direct.speed, 38400);
    assert_eq!(direct.flow_control, FlowControl::None);
    assert_eq!(direct.mode(), PortMode::Direct);
    match modem.mode() {
        PortMode::Modem(m) => assert_eq!(m.rings, 2),
        PortMode::Direct => panic!("a modem port"),
    }
}

#[test]
fn every_key_maps_onto_the_engine() {
    let text = r#"
[network]
local_ip = "192.168.7.1"
pool = "192.168.7.128/25"
dns = ["192.168.7.1", "9.9.9.9"]
nbns = ["192.168.7.2"]
tun = "dial0"
masquerade = "wan0"
proxy_arp = true
isolate_clients = true

[ppp]
auth = ["pap"]
mru = 1400
echo_interval = 0
echo_failure = 6
idle_timeout = 600
session_timeout = 7200
first_request_delay_ms = 250
chap_interval = 0
restart = 5
max_configure = 8
max_terminate = 3
max_failure = 4
login = true

[auth]
secrets = "/etc/nasd/secrets"
pam_service = "nasd"
name = "dialin"

[control]
socket = "/run/nasd.sock"
group = "nasd"

[accounting]
journal = "/var/log/nasd.jsonl"

[[port]]
name = "m1"
device = "/dev/ttyACM0"
mode = "modem"
speed = 57600
flow_control = "none"
init = ["ATZ", "AT&F&C1&D2"]
answer = "ATA0"
rings = 3
answer_timeout = 60
health_interval = 0
lock_dir = "none"
toggle_dtr_ms = 250
login = false
"#;
    let c = parse(text);
    let n = &c.network;
    assert_eq!(n.local_ip, Ipv4Addr::new(192, 168, 7, 1));
    assert_eq!(
        n.pool,
        Pool {
            first: Ipv4Addr::new(192, 168, 7, 129),
            last: Ipv4Addr::new(192, 168, 7, 254)
        }
    );
    assert_eq!(n.dns.len(), 2);
    assert_eq!(n.nbns, vec![Ipv4Addr::new(192, 168, 7, 2)]);
    assert_eq!(n.tun, "dial0");
    assert_eq!(n.masquerade.as_deref(), Some("wan0"));
    assert!(n.proxy_arp && n.isolate_clients);
    assert_eq!(
        c.auth,
        AuthSettings {
            secrets: Some(PathBuf::from("/etc/nasd/secrets")),
            pam_service: Some("nasd".into()),
            name: "dialin".into(),
        }
    );
    assert_eq!(
        c.control,
        ControlConfig {
            socket: PathBuf::from("/run/nasd.sock"),
            group: Some("nasd".into()),
        }
    );
    assert_eq!(c.accounting.journal, PathBuf::from("/var/log/nasd.jsonl"));

    let port = &c.ports[0];
    let link = c.link_config(port);
    assert_eq!(link.lcp.auth, vec![AuthProto::Pap]);
    assert_eq!(link.lcp.mru, 1400);
    assert_eq!(link.lcp.echo_interval, None);
    assert_eq!(link.lcp.echo_failure, 6);
    let fsm = FsmConfig {
        restart: Duration::from_secs(5),
        max_configure: 8,
        max_terminate: 3,
        max_failure: 4,
    };
    assert_eq!(link.lcp.fsm, fsm);
    assert_eq!(link.ipcp.fsm, fsm);
    assert_eq!(link.ipcp.local_ip, Ipv4Addr::new(192, 168, 7, 1));
    assert_eq!(
        link.ipcp.dns,
        [
            Some(Ipv4Addr::new(192, 168, 7, 1)),
            Some(Ipv4Addr::new(9, 9, 9, 9))
        ]
    );
    assert_eq!(link.ipcp.nbns, [Some(Ipv4Addr::new(192, 168, 7, 2)), None]);
    assert_eq!(link.auth.name, "dialin");
    assert_eq!(link.auth.rechallenge, None);
    assert_eq!(link.auth.restart, Duration::from_secs(5));
    assert_eq!(link.first_request_delay, Duration::from_millis(250));
    assert_eq!(link.idle_timeout, Some(Duration::from_secs(600)));
    assert_eq!(link.session_timeout, Some(Duration::from_secs(7200)));

    assert_eq!(
        port.settings(),
        PortSettings {
            device: PathBuf::from("/dev/ttyACM0"),
            speed: 57600,
            rtscts: false,
            lock_dir: None,
        }
    );
    let PortMode::Modem(m) = port.mode() else {
        panic!("a modem port");
    };
    assert_eq!(
        m.init,
        vec![ChatStep::ok("ATZ"), ChatStep::ok("AT&F&C1&D2")]
    );
    assert_eq!(m.answer, "ATA0");
    assert_eq!(m.rings, 3);
    assert_eq!(m.answer_timeout, Duration::from_secs(60));
    assert_eq!(m.health_interval, None);
    assert_eq!(m.toggle_dtr, Duration::from_millis(250));
    // The port's login = false overrides [ppp] login = true.
    assert_eq!(c.login_config(port), None);
    let spec = c.port_spec(port);
    assert_eq!(spec.name, "m1");
    assert_eq!(spec.link, link);
    assert_eq!(spec.login, None);
}

#[test]
fn defaults() {
    let c = parse(MINIMAL);
    let n = &c.network;
    assert!(n.dns.is_empty() && n.nbns.is_empty());
    assert_eq!(n.tun, "nasd0");
    assert_eq!(n.masquerade, None);
    assert!(!n.proxy_arp && !n.isolate_clients);
    let p = &c.ppp;
    assert_eq!(p.auth, vec![AuthProto::ChapMd5, AuthProto::Pap]);
    assert_eq!(p.mru, 1500);
    assert_eq!(p.echo_interval, Some(Duration::from_secs(30)));
    assert_eq!(p.echo_failure, 4);
    assert_eq!(p.idle_timeout, None);
    assert_eq!(p.session_timeout, None);
    assert_eq!(p.first_request_delay, Duration::from_millis(1000));
    assert_eq!(p.chap_interval, None);
    assert_eq!(p.restart, Duration::from_secs(3));
    assert_eq!(
        (p.max_configure, p.max_terminate, p.max_failure),
        (10, 2, 5)
    );
    assert!(!p.login);
    assert_eq!(
        c.auth,
        AuthSettings {
            secrets: Some(PathBuf::from("/etc/ppp/chap-secrets")),
            pam_service: None,
            name: "nasd".into(),
        }
    );
    assert_eq!(c.control.socket, PathBuf::from("/run/nasd/control.sock"));
    assert_eq!(c.control.group, None);
    assert_eq!(
        c.accounting.journal,
        PathBuf::from("/var/lib/nasd/accounting.jsonl")
    );
    let port = &c.ports[0];
    assert_eq!(
        *port,
        PortConfig {
            name: "ttyUSB0".into(),
            device: PathBuf::from("/dev/ttyUSB0"),
            mode: LineMode::Modem,
            speed: 115_200,
            flow_control: FlowControl::RtsCts,
            init: vec!["ATQ0V1H0".into(), "ATS0=0Q0&D3&C1".into()],
            answer: "ATA".into(),
            rings: 1,
            answer_timeout: Duration::from_secs(80),
            health_interval: Some(Duration::from_secs(60)),
            lock_dir: Some(PathBuf::from("/var/lock")),
            toggle_dtr: Duration::from_millis(500),
            login: None,
            number: None,
        }
    );
    // The defaults are the engine's defaults.
    assert_eq!(port.mode(), PortMode::Modem(ModemConfig::default()));
    let link = c.link_config(port);
    assert_eq!(link.lcp, LcpConfig::default());
    assert_eq!(link.auth, ProtoAuthConfig::default());
    assert_eq!(link.first_request_delay, Duration::from_secs(1));
    assert!(port.settings().rtscts);
    assert_eq!(c.login_config(port), None);
    assert_eq!(c.source(), "nasd.toml");
}

#[test]
fn flow_control_defaults_by_mode_and_can_be_set() {
    let c = parse(&with("", "mode = \"direct\""));
    assert_eq!(c.ports[0].flow_control, FlowControl::None);
    let c = parse(&with("", "mode = \"direct\"\nflow_control = \"rtscts\""));
    assert!(c.ports[0].settings().rtscts);
    let c = parse(&with("", "flow_control = \"none\""));
    assert!(!c.ports[0].settings().rtscts);
}

#[test]
fn login_on_a_port_overrides_ppp() {
    let c = parse(&format!("{}\n[ppp]\nlogin = true\n", with("", "")));
    assert_eq!(c.login_config(&c.ports[0]), Some(LoginConfig::default()));
    let c = parse(&with("", "login = true"));
    assert_eq!(c.login_config(&c.ports[0]), Some(LoginConfig::default()));
    let c = parse(&with("", "login = false"));
    assert_eq!(c.login_config(&c.ports[0]), None);
}

#[test]
fn pool_ranges_and_networks() {
    let p: Pool = "10.0.0.100-10.0.0.199".parse().unwrap();
    assert_eq!(p.len(), 100);
    assert!(!p.is_empty());
    assert!(p.contains(Ipv4Addr::new(10, 0, 0, 100)));
    assert!(p.contains(Ipv4Addr::new(10, 0, 0, 199)));
    assert!(!p.contains(Ipv4Addr::new(10, 0, 0, 99)));
    assert!(!p.contains(Ipv4Addr::new(10, 0, 0, 200)));
    assert_eq!(p.iter().next(), Some(Ipv4Addr::new(10, 0, 0, 100)));
    assert_eq!(p.iter().last(), Some(Ipv4Addr::new(10, 0, 0, 199)));
    assert_eq!(p.iter().count(), 100);
    assert_eq!((&p).into_iter().count(), 100);
    assert_eq!(p.to_string(), "10.0.0.100-10.0.0.199");

    // Spaces around the dash are fine; a one-address range too.
    let p: Pool = "10.0.0.5 - 10.0.0.5".parse().unwrap();
    assert_eq!(p.len(), 1);

    // A network leaves out its own and its broadcast address.
    let p: Pool = "10.0.0.128/25".parse().unwrap();
    assert_eq!(p.first, Ipv4Addr::new(10, 0, 0, 129));
    assert_eq!(p.last, Ipv4Addr::new(10, 0, 0, 254));
    assert_eq!(p.len(), 126);
    let p: Pool = "10.1.0.0/16".parse().unwrap();
    assert_eq!(p.len(), 65534);
    let p: Pool = "10.0.0.4/30".parse().unwrap();
    assert_eq!(
        (p.first, p.last),
        (Ipv4Addr::new(10, 0, 0, 5), Ipv4Addr::new(10, 0, 0, 6))
    );
    // /31: both addresses (RFC 3021); /32: the one.
    let p: Pool = "10.0.0.4/31".parse().unwrap();
    assert_eq!(
        (p.first, p.last),
        (Ipv4Addr::new(10, 0, 0, 4), Ipv4Addr::new(10, 0, 0, 5))
    );
    let p: Pool = "10.0.0.9/32".parse().unwrap();
    assert_eq!(
        (p.first, p.last, p.len()),
        (Ipv4Addr::new(10, 0, 0, 9), Ipv4Addr::new(10, 0, 0, 9), 1)
    );

    // Exactly 65536 addresses is the most.
    let p: Pool = "10.0.0.0-10.0.255.255".parse().unwrap();
    assert_eq!(p.len(), 65536);
    assert_eq!(
        "10.0.0.0-10.1.0.0".parse::<Pool>(),
        Err(PoolError::TooLarge(65537))
    );
    assert_eq!(
        "10.0.0.0/15".parse::<Pool>(),
        Err(PoolError::TooLarge(131_070))
    );
    assert_eq!(
        "0.0.0.0/0".parse::<Pool>(),
        Err(PoolError::TooLarge(4_294_967_294))
    );
    assert_eq!(
        "10.0.0.9-10.0.0.1".parse::<Pool>(),
        Err(PoolError::Reversed)
    );
    assert_eq!(
        "10.0.0.130/25".parse::<Pool>(),
        Err(PoolError::HostBits(Ipv4Addr::new(10, 0, 0, 128), 25))
    );
    for bad in [
        "",
        "10.0.0.1",
        "10.0.0.300-10.0.0.399",
        "10.0.0.0/33",
        "10.0.0.0/",
        "10.0.0.0/+8",
        "10.0.0.0/8/8",
        "10.0.0.1-",
        "pool",
    ] {
        assert_eq!(bad.parse::<Pool>(), Err(PoolError::Syntax), "{bad}");
    }
    assert_eq!(
        Pool::new(Ipv4Addr::new(1, 1, 1, 2), Ipv4Addr::new(1, 1, 1, 1)),
        None
    );
}

#[test]
fn bad_pool_is_reported_with_its_place() {
    let text = "[network]\nlocal_ip = \"10.0.0.1\"\npool =    \"10.0.0.300-10.0.0.399\"\n\
                [[port]]\ndevice = \"/dev/ttyS0\"\n";
    let s = one_error(text, 3, "is not an address range");
    assert_eq!(
        s,
        "nasd.toml:3:11: [network] pool: \"10.0.0.300-10.0.0.399\" is not an address range; \
         use \"A.B.C.D-A.B.C.E\" or \"A.B.C.D/N\""
    );
    let bad = |pool: &str| {
        format!(
            "[network]\nlocal_ip = \"10.0.0.1\"\npool = \"{pool}\"\n[[port]]\ndevice = \"/d\"\n"
        )
    };
    one_error(&bad("10.0.0.199-10.0.0.100"), 3, "runs backwards");
    one_error(
        &bad("10.0.0.0/8"),
        3,
        "holds 16777214 addresses; a pool holds at most 65536",
    );
    one_error(&bad("10.0.0.130/25"), 3, "did you mean \"10.0.0.128/25\"");
    one_error(&bad("127.0.0.0/24"), 3, "overlaps 127.0.0.0/8");
    one_error(&bad("0.0.0.0-0.0.0.9"), 3, "overlaps 0.0.0.0/8");
    one_error(&bad("239.0.0.0/24"), 3, "overlaps 224.0.0.0/3");
    // A CIDR pool leaves the network and broadcast addresses to others.
    let c = parse(&bad("10.0.0.128/25"));
    assert!(!c.network.pool.contains(Ipv4Addr::new(10, 0, 0, 128)));
    assert!(!c.network.pool.contains(Ipv4Addr::new(10, 0, 0, 255)));
    one_error(
        &bad("10.0.0.0/24"),
        2,
        "10.0.0.1 is inside the pool 10.0.0.1-10.0.0.254",
    );
}

#[test]
fn local_ip_must_be_an_address_outside_the_pool() {
    let text = |ip: &str| {
        format!(
            "[network]\npool = \"10.0.0.100-10.0.0.199\"\nlocal_ip = \"{ip}\"\n[[port]]\ndevice = \"/d\"\n"
        )
    };
    one_error(
        &text("10.0.0.150"),
        3,
        "10.0.0.150 is inside the pool 10.0.0.100-10.0.0.199",
    );
    one_error(&text("10.0.0.100"), 3, "the addresses would overlap");
    one_error(
        &text("10.0.0.256"),
        3,
        "\"10.0.0.256\" is not an IPv4 address",
    );
    one_error(&text("localhost"), 3, "is not an IPv4 address");
    one_error(&text("0.0.0.0"), 3, "cannot be a host's address");
    one_error(&text("255.255.255.255"), 3, "cannot be a host's address");
    parse(&text("10.0.0.99"));
    parse(&text("10.0.0.200"));
}

#[test]
fn dns_and_nbns_lists() {
    let c = parse(&with(
        "dns = [\"1.1.1.1\", \"8.8.8.8\"]\nnbns = [\"10.0.0.2\"]",
        "",
    ));
    assert_eq!(c.network.dns.len(), 2);
    one_error(
        &with("dns = [\"1.1.1.1\", \"8.8.8.8\", \"9.9.9.9\"]", ""),
        5,
        "3 servers listed; PPP offers at most two",
    );
    one_error(
        &with("\nnbns = [\"1.1.1.1\", \"8.8.8.8\", \"9.9.9.9\"]", ""),
        6,
        "at most two",
    );
    one_error(
        &with("dns = [\"1.1.1\"]", ""),
        5,
        "\"1.1.1\" is not an IPv4 address",
    );
    one_error(&with("dns = [\"10.0.0.150\"]", ""), 5, "inside the pool");
    one_error(
        &with("dns = \"1.1.1.1\"", ""),
        5,
        "[network] dns: invalid type",
    );
    let c = parse(&with("dns = []", ""));
    assert!(c.network.dns.is_empty());
}

#[test]
fn interface_names() {
    parse(&with("tun = \"abcdefghijklmno\"", ""));
    one_error(
        &with("tun = \"abcdefghijklmnop\"", ""),
        5,
        "16 bytes long; an interface name holds at most 15",
    );
    one_error(&with("tun = \"\"", ""), 5, "is not an interface name");
    one_error(
        &with("masquerade = \"eth 0\"", ""),
        5,
        "[network] masquerade: \"eth 0\" is not an interface name",
    );
    one_error(
        &with("masquerade = \"eth0:1\"", ""),
        5,
        "is not an interface name",
    );
    one_error(
        &with("masquerade = \"a/b\"", ""),
        5,
        "is not an interface name",
    );
    one_error(
        &with("masquerade = \"..\"", ""),
        5,
        "is not an interface name",
    );
    one_error(
        &with("masquerade = \"nasd0\"", ""),
        5,
        "is nasd's own TUN interface",
    );
}

#[test]
fn missing_device_names_the_port_table() {
    let text = "[network]\nlocal_ip = \"10.0.0.1\"\npool = \"10.0.0.100-10.0.0.199\"\n\n\
                [[port]]\ndevice = \"/dev/ttyS0\"\n\n[[port]]\nspeed = 9600\n";
    let s = one_error(text, 8, "missing field `device`");
    assert_eq!(s, "nasd.toml:8:1: [[port]] #2: missing field `device`");
}

#[test]
fn duplicate_ports() {
    let text = "[network]\nlocal_ip = \"10.0.0.1\"\npool = \"10.0.0.100-10.0.0.199\"\n\
                [[port]]\ndevice = \"/dev/ttyS0\"\n\
                [[port]]\ndevice = \"/dev/serial/ttyS0\"\n";
    let s = one_error(
        text,
        7,
        "\"ttyS0\" is already the name of the port on line 4",
    );
    assert!(s.starts_with("nasd.toml:7:10: [[port]] ttyS0 name:"), "{s}");
    let text = "[network]\nlocal_ip = \"10.0.0.1\"\npool = \"10.0.0.100-10.0.0.199\"\n\
                [[port]]\ndevice = \"/dev/ttyS0\"\n\
                [[port]]\nname = \"b\"\ndevice = \"/dev/ttyS0\"\n";
    one_error(text, 8, "/dev/ttyS0 is already used by the port on line 4");
    // The same device twice without names: one problem, about the device.
    let text = "[network]\nlocal_ip = \"10.0.0.1\"\npool = \"10.0.0.100-10.0.0.199\"\n\
                [[port]]\ndevice = \"/dev/ttyS0\"\n\
                [[port]]\ndevice = \"/dev/ttyS0\"\n";
    one_error(text, 7, "already used");
    // Explicit duplicate names.
    let text = "[network]\nlocal_ip = \"10.0.0.1\"\npool = \"10.0.0.100-10.0.0.199\"\n\
                [[port]]\nname = \"a\"\ndevice = \"/dev/ttyS0\"\n\
                [[port]]\nname = \"a\"\ndevice = \"/dev/ttyS1\"\n";
    one_error(text, 8, "\"a\" is already the name of the port on line 4");
}

#[test]
fn port_values() {
    one_error(
        &with("", "mode = \"modemm\""),
        8,
        "unknown variant `modemm`, expected `modem` or `direct`",
    );
    one_error(
        &with("", "flow_control = \"xonxoff\""),
        8,
        "unknown variant `xonxoff`",
    );
    let s = one_error(
        &with("", "rings = 0"),
        8,
        "rings: 0 is too small; the least is 1",
    );
    assert!(
        s.starts_with("nasd.toml:8:9: [[port]] ttyUSB0 rings"),
        "{s}"
    );
    one_error(&with("", "speed = 0"), 8, "speed: 0 is too small");
    one_error(
        &with("", "answer_timeout = 0"),
        8,
        "answer_timeout: 0 is too small",
    );
    one_error(
        &with("", "toggle_dtr_ms = 0"),
        8,
        "toggle_dtr_ms: 0 is too small",
    );
    one_error(
        &with("", "init = [\"ATZ\", \"hello\"]"),
        8,
        "\"hello\" is not an AT command",
    );
    one_error(
        &with("", "init = [\"ATZ\\r\"]"),
        8,
        "\"ATZ\\r\" is not an AT command",
    );
    one_error(&with("", "answer = \"\""), 8, "is not an AT command");
    one_error(&with("", "answer = \"€A\""), 8, "is not an AT command");
    one_error(&with("", "init = [\"ÀT\"]"), 8, "is not an AT command");
    parse(&with("", "init = [\"at&f\"]\nanswer = \"ata\""));
    one_error(
        &with("", "lock_dir = \"\""),
        8,
        "lock_dir: the path is empty",
    );
    one_error(
        &with("", "name = \"my port\""),
        8,
        "\"my port\" is not a port name",
    );
    one_error(
        &with("", "rings = -1"),
        8,
        "rings: invalid value: integer `-1`",
    );
    one_error(
        &with("", "login = \"yes\""),
        8,
        "login: invalid type: string \"yes\", expected true or false",
    );
    let c = parse(&with(
        "",
        "init = []\nlock_dir = \"none\"\nhealth_interval = 0",
    ));
    assert!(c.ports[0].init.is_empty());
    assert_eq!(c.ports[0].lock_dir, None);
    assert_eq!(c.ports[0].health_interval, None);
    // A device with no file name needs an explicit name.
    let text = "[network]\nlocal_ip = \"10.0.0.1\"\npool = \"10.0.0.100-10.0.0.199\"\n\
                [[port]]\ndevice = \"/\"\n";
    one_error(text, 5, "no name can be made from \"/\"; set name");
    let text = "[network]\nlocal_ip = \"10.0.0.1\"\npool = \"10.0.0.100-10.0.0.199\"\n\
                [[port]]\ndevice = \"\"\n";
    one_error(text, 5, "device: the path is empty");
}

#[test]
fn auth_values() {
    let ppp = |auth: &str| format!("{}\n[ppp]\nauth = {auth}\n", with("", ""));
    // with() is 9 lines; [ppp] is on line 10, auth on 11.
    one_error(
        &ppp("[\"chap\", \"mschap\"]"),
        11,
        "\"mschap\" is not an authentication protocol; use \"pap\" or \"chap\"",
    );
    one_error(
        &ppp("[\"none\"]"),
        11,
        "write auth = [] for no authentication",
    );
    one_error(&ppp("[\"pap\", \"pap\"]"), 11, "\"pap\" is listed twice");
    one_error(&ppp("\"pap\""), 11, "[ppp] auth: invalid type");
    assert_eq!(
        parse(&ppp("[\"pap\", \"chap\"]")).ppp.auth,
        vec![AuthProto::Pap, AuthProto::ChapMd5]
    );
    assert!(parse(&ppp("[]")).ppp.auth.is_empty());
}

#[test]
fn chap_cannot_use_pam() {
    let text = |auth: &str, extra: &str| {
        format!(
            "{}\n[ppp]\nauth = {auth}\n[auth]\npam_service = \"nasd\"\n{extra}\n",
            with("", "")
        )
    };
    let s = one_error(
        &text("[\"chap\", \"pap\"]", ""),
        13,
        "CHAP cannot use PAM: it needs the plaintext secret",
    );
    assert!(
        s.starts_with("nasd.toml:13:15: [auth] pam_service: "),
        "{s}"
    );
    // The default auth includes CHAP too.
    let t = format!("{}\n[auth]\npam_service = \"nasd\"\n", with("", ""));
    one_error(&t, 11, "CHAP cannot use PAM");
    // PAP only: PAM checks the passwords, no secrets file.
    let c = parse(&text("[\"pap\"]", ""));
    assert_eq!(c.auth.secrets, None);
    assert_eq!(c.auth.pam_service.as_deref(), Some("nasd"));
    // CHAP with a secrets file and PAM for PAP.
    let c = parse(&text(
        "[\"chap\", \"pap\"]",
        "secrets = \"/etc/ppp/chap-secrets\"",
    ));
    assert_eq!(c.auth.secrets, Some(PathBuf::from("/etc/ppp/chap-secrets")));
    one_error(
        &text("[\"pap\"]", "").replace("\"nasd\"", "\"na sd\""),
        13,
        "is not a PAM service name",
    );
}

#[test]
fn unknown_keys_and_sections_have_lines() {
    one_error(
        &with("tunnel = \"x\"", ""),
        5,
        "[network] unknown key `tunnel`; the keys are `local_ip`",
    );
    one_error(
        &with("", "baud = 9600"),
        8,
        "[[port]] #1 unknown key `baud`",
    );
    one_error(&plus("[ppp]\nmtu = 1500"), 8, "[ppp] unknown key `mtu`");
    one_error(
        &plus("[auth]\nsecret = \"/x\""),
        8,
        "[auth] unknown key `secret`",
    );
    one_error(
        &plus("[control]\nmode = 1"),
        8,
        "[control] unknown key `mode`",
    );
    one_error(
        &plus("[accounting]\nradius = 1"),
        8,
        "[accounting] unknown key `radius`",
    );
    let s = one_error(&plus("[h323]\nserver = 1"), 7, "unknown section [h323]");
    assert!(s.starts_with("nasd.toml:7:2: "), "{s}");
    one_error(&plus("[ppp.lcp]\nx = 1"), 7, "[ppp] unknown key `lcp`");
    // Dotted keys name the same tables.
    let c = parse(&format!("ppp.mru = 1400\n{MINIMAL}"));
    assert_eq!(c.ppp.mru, 1400);
}

#[test]
fn missing_sections() {
    let p = problems("[[port]]\ndevice = \"/dev/ttyS0\"\n");
    assert_eq!(p.len(), 1, "{p:#?}");
    assert_eq!(p[0].line, None);
    assert_eq!(
        p[0].to_string(),
        "nasd.toml: [network] is missing: local_ip and pool are required"
    );
    let p = problems("[network]\nlocal_ip = \"10.0.0.1\"\npool = \"10.0.0.128/25\"\n");
    assert_eq!(p.len(), 1, "{p:#?}");
    assert!(p[0].message.contains("no [[port]]"));
    one_error(
        "port = []\n[network]\nlocal_ip = \"10.0.0.1\"\npool = \"10.0.0.128/25\"\n",
        1,
        "no [[port]]",
    );
    one_error(
        "[network]\nlocal_ip = \"10.0.0.1\"\npool = \"10.0.0.128/25\"\n[port]\ndevice = \"/d\"\n",
        4,
        "write [[port]] with double brackets",
    );
    one_error(
        "[network]\nlocal_ip = \"10.0.0.1\"\n\n[[port]]\ndevice = \"/d\"\n",
        1,
        "[network]: missing field `pool`",
    );
    one_error(
        "network = 3\n[[port]]\ndevice = \"/d\"\n",
        1,
        "[network] must be a table, not integer",
    );
}

#[test]
fn syntax_errors_have_lines() {
    let p = problems("[network]\nlocal_ip = \"10.0.0.1\"\npool = 10.0.0.0/24\n");
    assert_eq!(p[0].line, Some(3));
    assert!(p[0].message.starts_with("TOML syntax: "), "{}", p[0]);
    let p = problems("[network]\nlocal_ip = \"10.0.0.1\"\nlocal_ip = \"10.0.0.2\"\n");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].line, Some(3));
    assert!(p[0].message.contains("duplicate key"), "{}", p[0]);
    // Two broken lines, two problems.
    let p = problems("[network]\nlocal_ip = \npool = \"x\"\n[ppp]\nmru = 5 5\n");
    let lines: Vec<_> = p.iter().map(|p| p.line).collect();
    assert_eq!(lines, vec![Some(2), Some(5)]);
}

#[test]
fn ppp_numbers_are_checked() {
    let ppp = |kv: &str| plus(&format!("[ppp]\n{kv}"));
    one_error(
        &ppp("mru = 100"),
        8,
        "[ppp] mru: 100 is too small; the least is 128",
    );
    one_error(&ppp("mru = 20000"), 8, "the most is 16384");
    one_error(
        &ppp("mru = \"big\""),
        8,
        "[ppp] mru: invalid type: string \"big\", expected a whole number",
    );
    one_error(&ppp("echo_failure = 0"), 8, "echo_failure: 0 is too small");
    one_error(&ppp("restart = 0"), 8, "restart: 0 is too small");
    one_error(
        &ppp("max_configure = 0"),
        8,
        "max_configure: 0 is too small",
    );
    one_error(
        &ppp("first_request_delay_ms = 70000"),
        8,
        "the most is 60000",
    );
    one_error(
        &ppp("session_timeout = 99999999999"),
        8,
        "session_timeout: 99999999999 is too large",
    );
    let c = parse(&ppp(
        "echo_interval = 0\nidle_timeout = 0\nchap_interval = 60",
    ));
    assert_eq!(c.ppp.echo_interval, None);
    assert_eq!(c.ppp.idle_timeout, None);
    assert_eq!(
        c.link_config(&c.ports[0]).auth.rechallenge,
        Some(Duration::from_secs(60))
    );
}

#[test]
fn control_and_paths() {
    one_error(
        &plus(&format!("[control]\nsocket = \"/{}\"", "s".repeat(120))),
        8,
        "a Unix socket's holds at most 107",
    );
    one_error(
        &plus("[control]\ngroup = \"dial out\""),
        8,
        "\"dial out\" is not a group name",
    );
    one_error(
        &plus("[control]\nsocket = \"\""),
        8,
        "[control] socket: the path is empty",
    );
    one_error(
        &plus("[auth]\nsecrets = \"\""),
        8,
        "[auth] secrets: the path is empty",
    );
    one_error(
        &plus("[auth]\nname = \"\""),
        8,
        "[auth] name: must hold 1 to 255 bytes",
    );
    one_error(
        &plus("[accounting]\njournal = \"\""),
        8,
        "[accounting] journal: the path is empty",
    );
    let c = parse(&plus("[accounting]"));
    assert_eq!(c.accounting.journal, PathBuf::from(DEFAULT_JOURNAL));
}

#[test]
fn every_problem_is_reported_at_once_in_file_order() {
    let text = r#"[network]
local_ip = "10.0.0.150"
pool = "10.0.0.100-10.0.0.199"
dns = ["1.1.1.1", "2.2.2.2", "3.3.3.3"]
tun = "a-very-long-interface"

[ppp]
auth = ["chap", "ms-chap"]
mru = 64
typo = 1

[auth]
pam_service = "nasd"

[[port]]
speed = 9600

[[port]]
device = "/dev/ttyS0"
mode = "modemm"
rings = 0

[[port]]
device = "/dev/ttyS0"

[extra]
"#;
    let err = Config::from_str(text, "nasd.toml").unwrap_err();
    let got: Vec<_> = err
        .problems()
        .iter()
        .map(|p| {
            (
                p.line.unwrap(),
                p.message.split(':').next().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        (2, "[network] local_ip"),
        (4, "[network] dns"),
        (5, "[network] tun"),
        (8, "[ppp] auth"),
        (9, "[ppp] mru"),
        (
            10,
            "[ppp] unknown key `typo`; the keys are `auth`, `mru`, `echo_interval`, `echo_failure`, `idle_timeout`, `session_timeout`, `first_request_delay_ms`, `chap_interval`, `restart`, `max_configure`, `max_terminate`, `max_failure`, `login`",
        ),
        (13, "[auth] pam_service"),
        (15, "[[port]] #1"),
        (20, "[[port]] #2 mode"),
        (21, "[[port]] ttyS0 rings"),
        (24, "[[port]] ttyS0 device"),
        (
            26,
            "unknown section [extra]; the sections are [network], [ppp], [auth], [control], [accounting], [radius], [sip] and [[port]]",
        ),
    ];
    let want: Vec<_> = want.iter().map(|(l, m)| (*l, m.to_string())).collect();
    assert_eq!(got, want, "{err}");
    // Display: one problem a line, each with file, line and column.
    let shown = err.to_string();
    assert_eq!(shown.lines().count(), want.len());
    assert!(
        shown.lines().all(|l| l.starts_with("nasd.toml:")),
        "{shown}"
    );
    assert!(
        shown.starts_with("nasd.toml:2:12: [network] local_ip: 10.0.0.150 is inside the pool"),
        "{shown}"
    );
}

#[test]
fn warnings() {
    let text = "[network]\nlocal_ip = \"10.0.0.1\"\npool = \"10.0.0.100-10.0.0.199\"\n\
                [ppp]\nauth = [\"pap\"]\nchap_interval = 30\n\
                [auth]\nsecrets = \"/nonexistent/nasd/secrets\"\n\
                [[port]]\ndevice = \"/nonexistent/ttyUSB7\"\nspeed = 12345\nlock_dir = \"/tmp\"\n\
                [[port]]\ndevice = \"/dev/null\"\nmode = \"direct\"\nrings = 2\nlock_dir = \"none\"\n";
    let c = parse(text);
    let w = c.warnings();
    let has = |needle: &str| w.iter().any(|x| x.contains(needle));
    assert!(
        has("nasd.toml:6:17: [ppp] chap_interval: has no effect"),
        "{w:#?}"
    );
    assert!(
        has("nasd.toml:8:11: [auth] secrets: /nonexistent/nasd/secrets does not exist"),
        "{w:#?}"
    );
    assert!(
        has(
            "nasd.toml:10:10: [[port]] ttyUSB7 device: /nonexistent/ttyUSB7 does not exist (yet); nasd will keep trying to open it"
        ),
        "{w:#?}"
    );
    assert!(
        has("nasd.toml:11:9: [[port]] ttyUSB7 speed: 12345 is not a standard line speed"),
        "{w:#?}"
    );
    assert!(
        has("nasd.toml:16:9: [[port]] null rings: has no effect on a direct line"),
        "{w:#?}"
    );
    // /dev/null and /tmp exist.
    assert!(
        !has("/dev/null does not exist") && !has("/tmp does not exist"),
        "{w:#?}"
    );
    assert_eq!(w.len(), 5, "{w:#?}");

    let c = parse(&plus("[ppp]\nauth = []\n"));
    assert!(
        c.warnings()
            .iter()
            .any(|w| w.contains("anyone who calls gets an address"))
    );
    // PAM without a secrets file: no warning about a secrets file.
    let c = parse(&plus(
        "[ppp]\nauth = [\"pap\"]\n[auth]\npam_service = \"nasd\"",
    ));
    assert!(
        !c.warnings().iter().any(|w| w.contains("secrets")),
        "{:#?}",
        c.warnings()
    );
}

#[test]
fn load_reads_a_file_and_names_it() {
    let dir = std::env::temp_dir().join(format!("nasd-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("nasd.toml");
    std::fs::write(&path, MINIMAL).unwrap();
    let c = Config::load(&path).unwrap();
    assert_eq!(c.source(), path.display().to_string());
    std::fs::write(&path, MINIMAL.replace("10.0.0.1\"", "10.0.0.150\"")).unwrap();
    let e = Config::load(&path).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("{}:3:12: ", path.display())),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let e = Config::load(&dir.join("missing.toml")).unwrap_err();
    assert_eq!(e.problems().len(), 1);
    assert!(
        e.to_string().contains("cannot read the configuration"),
        "{e}"
    );
}

#[test]
fn columns_count_characters() {
    let p = problems(&with("dns = [\"é\", \"1.1.1\"]", ""));
    assert_eq!(p.len(), 2);
    assert_eq!((p[0].line, p[0].column), (Some(5), Some(8)));
    assert_eq!((p[1].line, p[1].column), (Some(5), Some(13)));
}

#[test]
fn a_required_key_of_the_wrong_type_is_one_problem() {
    let text = "[network]\nlocal_ip = 10\npool = \"10.0.0.100-10.0.0.199\"\n\
                [[port]]\ndevice = 5\n";
    let p = problems(text);
    let got: Vec<_> = p.iter().map(|p| (p.line, p.message.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (
                Some(2),
                "[network] local_ip: invalid type: integer `10`, expected a string"
            ),
            (
                Some(5),
                "[[port]] #1 device: invalid type: integer `5`, expected a string"
            ),
        ]
    );
}

#[test]
fn secrets_file_warnings_only_when_passwords_are_checked() {
    let missing = "[auth]\nsecrets = \"/nonexistent/secrets\"";
    let warned = |text: &str| {
        parse(text)
            .warnings()
            .iter()
            .any(|w| w.contains("/nonexistent/secrets does not exist"))
    };
    assert!(warned(&plus(missing)));
    let open = format!("[ppp]\nauth = []\n{missing}");
    assert!(!warned(&plus(&open)));
    let c = parse(&plus(&open));
    assert!(
        c.warnings()
            .iter()
            .any(|w| w.starts_with("nasd.toml: [ppp] auth is empty")),
        "{:#?}",
        c.warnings()
    );
    // A text login checks passwords even without PPP authentication.
    let login = format!("[ppp]\nauth = []\nlogin = true\n{missing}");
    assert!(warned(&plus(&login)));
    assert!(
        !parse(&plus(&login))
            .warnings()
            .iter()
            .any(|w| w.contains("anyone"))
    );
}

// ---- [radius] and [accounting] -----------------------------------------------------------

#[test]
fn radius_servers_and_dae_are_read_with_defaults() {
    let c = parse(&plus(
        "[radius]\nnas_ip = \"192.0.2.10\"\ndae_listen = \"127.0.0.1\"\n\
         [[radius.server]]\naddress = \"127.0.0.1\"\nsecret = \"s1\"\n\
         [[radius.server]]\naddress = \"::1\"\nsecret = \"s2\"\nauth_port = 18120\nacct_port = 18130\n\
         [[radius.dae_client]]\naddress = \"127.0.0.1\"\nsecret = \"d\"\n",
    ));
    let r = c.radius.expect("radius");
    assert_eq!(r.servers.len(), 2);
    assert_eq!(r.servers[0].auth_port, 1812);
    assert_eq!(r.servers[0].acct_port, 1813);
    assert_eq!(r.servers[1].auth_port, 18120);
    assert_eq!(
        r.servers[1].address,
        "::1".parse::<core::net::IpAddr>().unwrap()
    );
    assert!(r.authenticate && r.accounting);
    assert_eq!(r.nas_identifier, "nasd");
    assert_eq!(r.nas_ip, Some(Ipv4Addr::new(192, 0, 2, 10)));
    assert_eq!(r.timeout, Duration::from_secs(3));
    assert_eq!(r.retries, 3);
    assert_eq!(r.dae_listen, Some("127.0.0.1:3799".parse().unwrap()));
    assert_eq!(r.dae_clients.len(), 1);
    // The secret never shows in Debug output.
    assert!(!format!("{r:?}").contains("s1"));
    assert_eq!(
        c.accounting.interim_interval,
        Some(Duration::from_secs(300))
    );
    assert!(parse(MINIMAL).radius.is_none());
}

#[test]
fn radius_problems_are_reported_with_their_lines() {
    one_error(&plus("[radius]\ntimeout = 3\n"), 7, "no [[radius.server]]");
    one_error(
        &plus("[radius]\n[[radius.server]]\naddress = \"radius.example\"\nsecret = \"s\"\n"),
        9,
        "is not an IP address",
    );
    one_error(
        &plus("[radius]\n[[radius.server]]\naddress = \"127.0.0.1\"\nsecret = \"\"\n"),
        10,
        "shared secret is empty",
    );
    one_error(
        &plus(
            "[radius]\ndae_listen = \"0.0.0.0:3799\"\n[[radius.server]]\naddress = \"127.0.0.1\"\nsecret = \"s\"\n",
        ),
        8,
        "no [[radius.dae_client]]",
    );
    one_error(
        &plus(
            "[radius]\nretries = 0\n[[radius.server]]\naddress = \"127.0.0.1\"\nsecret = \"s\"\n",
        ),
        8,
        "too small",
    );
    one_error(
        &plus(
            "[radius]\nserver_addr = \"x\"\n[[radius.server]]\naddress = \"127.0.0.1\"\nsecret = \"s\"\n",
        ),
        8,
        "unknown key",
    );
    one_error(
        &plus("[accounting]\ninterim_interval = -1\n"),
        8,
        "interim_interval",
    );
}

#[test]
fn a_port_may_name_its_telephone_number() {
    let c = parse(&with("", "number = \"+1 555 1234\""));
    assert_eq!(c.ports[0].number.as_deref(), Some("+1 555 1234"));
    one_error(&with("", "number = \"\""), 8, "is not a telephone number");
}
