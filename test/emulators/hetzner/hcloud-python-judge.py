"""
hcloud-python (Hetzner's official Python client, Debian's python3-hcloud) as a judge of the Hetzner
emulator's load balancers and Floating IPs: it reads every answer into its own domain objects (a
missing or mistyped field is an exception here), waits for actions its own way, and real HTTP
requests go through the addresses it reports.

Usage: /usr/bin/python3 hcloud-python-judge.py ENDPOINT TOKEN SERVER_A SERVER_B PORT
Prints one JSON object of what it saw; exits non-zero on any error.
"""
import json
import sys
import time
import urllib.request

from hcloud import Client
from hcloud.load_balancer_types.domain import LoadBalancerType
from hcloud.load_balancers.domain import LoadBalancerHealthCheck, LoadBalancerService, LoadBalancerTarget
from hcloud.locations.domain import Location

endpoint, token, server_a, server_b, port = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
client = Client(token=token, api_endpoint=endpoint, poll_interval=0.2)
seen = {}


def who(host, port, count, distinct=1, timeout=20):
    """
    Hostnames answering `count` requests in a row at host:port, retried until all succeed and at
    least `distinct` servers answered (a target just added takes traffic once its check passed).
    """
    deadline = time.time() + timeout
    while True:
        try:
            names = sorted({urllib.request.urlopen(f"http://{host}:{port}/", timeout=3).read().decode().strip() for _ in range(count)})
            if len(names) >= distinct or time.time() > deadline:
                return names
        except Exception:
            if time.time() > deadline:
                raise
        time.sleep(0.3)


a = client.servers.get_by_id(server_a)
b = client.servers.get_by_id(server_b)

# A load balancer: created with a service and a server target, then a second target added.
check = LoadBalancerHealthCheck(protocol="tcp", port=port, interval=3, timeout=2, retries=1)
service = LoadBalancerService(protocol="tcp", listen_port=81, destination_port=port, proxyprotocol=False, health_check=check)
created = client.load_balancers.create(
    name="judge", load_balancer_type=LoadBalancerType(name="lb11"), location=Location(name="fsn1"),
    services=[service], targets=[LoadBalancerTarget(type="server", server=a, use_private_ip=False)], labels={"judge": "yes"},
)
created.action.wait_until_finished()
lb = client.load_balancers.get_by_name("judge")
seen["lb_type"] = lb.load_balancer_type.name
seen["lb_location"] = lb.location.name
seen["lb_services"] = [(s.protocol, s.listen_port, s.destination_port, s.health_check.protocol) for s in lb.services]
ip = lb.public_net.ipv4.ip
seen["one_target"] = who(ip, 81, 3)
lb.add_target(LoadBalancerTarget(type="server", server=b, use_private_ip=False)).wait_until_finished()
lb = client.load_balancers.get_by_id(lb.id)
seen["targets"] = sorted(t.server.id for t in lb.targets)
seen["two_targets"] = who(ip, 81, 8, distinct=2)
lb.remove_target(LoadBalancerTarget(type="server", server=a, use_private_ip=False)).wait_until_finished()
seen["after_remove"] = who(ip, 81, 4)
seen["listed"] = [l.name for l in client.load_balancers.get_all(label_selector="judge=yes")]
seen["actions"] = sorted({x.command for x in lb.get_actions_list().actions})
lb.delete()
seen["left"] = [l.name for l in client.load_balancers.get_all()]

# A Floating IP: created assigned to a, moved to b, unassigned, deleted.
made = client.floating_ips.create(type="ipv4", server=a, name="judge-ip", labels={"judge": "yes"})
made.action.wait_until_finished()
fip = client.floating_ips.get_by_name("judge-ip")
seen["fip_server"] = fip.server.id
seen["fip_home"] = fip.home_location.name
seen["fip_on_a"] = who(fip.ip, port, 3)
seen["a_floating_ips"] = [f.id for f in client.servers.get_by_id(server_a).public_net.floating_ips]
fip.assign(b).wait_until_finished()
seen["fip_on_b"] = who(fip.ip, port, 3)
fip.unassign().wait_until_finished()
seen["fip_unassigned"] = client.floating_ips.get_by_id(fip.id).server
fip.delete()
seen["fips_left"] = len(client.floating_ips.get_all())

print(json.dumps(seen))
