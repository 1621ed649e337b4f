output "agents" {
  description = "Each generator host's agent by instance id, for fleets.generators.agents.output: the builtin engine runs on them."
  value       = { for i in aws_instance.worker : i.id => "http://${i.private_ip}:${var.agent_port}" }
}

output "master" {
  description = "Locust master web API (private address), for workload.locust.master; \"\" without a locustfile."
  value       = local.locust ? "http://${aws_instance.master[0].private_ip}:8089" : ""
}

output "locust_workers" {
  description = "Locust worker processes the master should have (one per CPU of each generator host), for workload.locust.workers; 0 without a locustfile."
  value       = local.locust ? var.workers * data.aws_ec2_instance_type.generator[0].default_vcpus : 0
}

output "addresses" {
  description = "Private addresses of the generator hosts."
  value       = aws_instance.worker[*].private_ip
}

output "instance_ids" {
  description = "Instance ids of the generator hosts and the Locust master."
  value       = concat(aws_instance.worker[*].id, aws_instance.master[*].id)
}

output "image" {
  description = "The image the hosts run."
  value       = terraform_data.image.output
}

output "size" {
  description = "Number of generator hosts."
  value       = length(aws_instance.worker)
}
