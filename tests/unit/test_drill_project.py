"""The full-stack drill's copy of a compose project shares nothing with production: its configuration."""

from ansible_collections.stackops.runbook.plugins.module_utils import _drill_project as dp

SOURCE = {
    "version": "2.4",
    "services": {
        "postgres": {"container_name": "app-postgres", "image": "postgres:15", "ports": ["127.0.0.1:55432:5432/tcp"],
                     "volumes": ["/srv/app/initdb:/docker-entrypoint-initdb.d:ro", "pgdata:/var/lib/postgresql/data:rw"]},
        "caddy": {"image": "caddy", "labels": ["tier=edge"],
                  "ports": [{"target": 443, "published": 443, "protocol": "tcp", "mode": "ingress"}],
                  "volumes": [{"type": "bind", "source": "/etc/ssl/private", "target": "/certs"},
                              "/srv/app/Caddyfile:/etc/caddy/Caddyfile"]},
        "api": {"image": "app/api:1.4.2", "volumes": ["uploads:/srv/uploads:rw"]},
    },
    "volumes": {"pgdata": {}, "uploads": {"name": "app-uploads"}, "certs": {"external": True, "name": "certs"}},
    "networks": {"edge": {"external": True}},
}


def test_the_copy_has_no_fixed_names_its_own_volumes_and_networks_and_loopback_ephemeral_ports():
    config, changes = dp.drill_config(SOURCE, "app", "/srv/app")
    postgres, caddy = config["services"]["postgres"], config["services"]["caddy"]
    assert "container_name" not in postgres and "postgres: no fixed container name" in changes
    assert postgres["ports"] == ["127.0.0.1::5432/tcp"] and caddy["ports"] == ["127.0.0.1::443/tcp"]
    assert config["volumes"]["uploads"] == {"labels": {dp.DRILL_LABEL: "true", dp.DRILL_OF_LABEL: "app"}}
    assert "external" not in config["volumes"]["certs"] and "name" not in config["volumes"]["certs"]
    assert "external" not in config["networks"]["edge"] and "volume certs: the drill's own, not the external one" in changes
    assert caddy["labels"] == {"tier": "edge", dp.DRILL_LABEL: "true", dp.DRILL_OF_LABEL: "app"}
    assert SOURCE["services"]["postgres"]["container_name"] == "app-postgres"  # the source is not modified


def test_bind_mounts_from_outside_the_copy_are_read_only_and_the_copy_s_own_stay_as_they_are():
    config, _changes = dp.drill_config(SOURCE, "app", "/srv/app")
    caddy = config["services"]["caddy"]["volumes"]
    assert caddy[0] == {"type": "bind", "source": "/etc/ssl/private", "target": "/certs", "read_only": True}
    assert caddy[1] == "/srv/app/Caddyfile:/etc/caddy/Caddyfile"
    config, _changes = dp.drill_config(SOURCE, "app", "/tmp/drill/srv/app")
    assert config["services"]["caddy"]["volumes"][1] == "/srv/app/Caddyfile:/etc/caddy/Caddyfile:ro"
    assert config["services"]["postgres"]["volumes"] == ["/srv/app/initdb:/docker-entrypoint-initdb.d:ro",
                                                         "pgdata:/var/lib/postgresql/data:rw"]


def test_the_default_network_compose_makes_is_labelled_so_the_drill_s_cleanup_finds_it():
    labels = {dp.DRILL_LABEL: "true", dp.DRILL_OF_LABEL: "app"}
    config, _changes = dp.drill_config(SOURCE, "app", "/srv/app")
    assert config["networks"]["default"] == {"labels": labels}  # postgres, caddy and api name no network
    only_edge = {"services": {"api": {"image": "app/api", "networks": ["edge"]}}, "networks": {"edge": {}}}
    config, _changes = dp.drill_config(only_edge, "app", "/srv/app")
    assert "default" not in config["networks"]
    host = {"services": {"agent": {"image": "agent", "network_mode": "host"}}}
    assert "networks" not in dp.drill_config(host, "app", "/srv/app")[0]
