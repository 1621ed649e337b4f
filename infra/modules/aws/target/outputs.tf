output "endpoint" {
  description = "Where load goes: nginx on the first target host (private address)."
  value       = "http://${aws_instance.target[0].private_ip}:${var.load_port}"
}

output "addresses" {
  description = "Private addresses of the target hosts."
  value       = aws_instance.target[*].private_ip
}

output "instance_ids" {
  description = "Instance ids (CloudWatch dimensions, readiness checks)."
  value       = aws_instance.target[*].id
}

output "node_exporters" {
  description = "node_exporter URLs of the target hosts."
  value       = [for ip in aws_instance.target[*].private_ip : "http://${ip}:9100/metrics"]
}

output "generator_security_group_id" {
  description = "Security group the generators must join to reach the load port."
  value       = aws_security_group.generators.id
}

output "agents" {
  description = "The hosts' agents (private addresses), for fleets.target.agents.output."
  value       = [for ip in aws_instance.target[*].private_ip : "http://${ip}:${var.agent_port}"]
}
