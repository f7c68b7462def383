"""What runs on a compute node: LXC containers, NAT of ports, the HTTP proxy."""
