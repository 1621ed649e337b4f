# The generator fleet on AWS: workers instances, each running loadramp's
# agent (the builtin engine runs on the agents:
# fleets.generators.agents: { output: agents }) and, with a locustfile, one
# Locust worker per CPU; with a locustfile, one more instance runs the Locust
# master. The master's command does not depend on the worker count (workers
# join it; the locust engine waits for workload.locust.workers of them), so
# growing the fleet changes only workers. They join the target module's
# generator security group (the only source the target's load port accepts).
# Locust has no authentication between master and workers: its ports are open
# only inside the group, and the master's web API only to operator_cidr; the
# agent port and SSH (with a key) only to operator_cidr. IMDSv2 is required
# and root volumes are encrypted.

terraform {
  required_version = ">= 1.5.0"
  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.30: aws_ssm_parameter's insecure_value.
      version = ">= 5.30"
    }
  }
}

locals {
  tags = merge(var.tags, {
    "loadramp:run-id" = var.loadramp_run_id
    "loadramp:role"   = "generator"
  })
  locust = var.locustfile != ""
  operator_ports = concat(
    [{ port = var.agent_port, what = "loadramp agent" }],
    local.locust ? [{ port = 8089, what = "Locust web API" }] : [],
    var.key_name != "" ? [{ port = 22, what = "SSH" }] : [],
  )
}

# The image: ami, or the current one of image_parameter, looked up once per
# workspace (see the target module).
data "aws_ssm_parameter" "image" {
  count = var.ami == "" ? 1 : 0
  name  = var.image_parameter
}

resource "terraform_data" "image" {
  input            = var.ami != "" ? var.ami : data.aws_ssm_parameter.image[0].insecure_value
  triggers_replace = [var.ami, var.image_parameter]

  lifecycle {
    ignore_changes = [input]
  }
}

# The instance type's CPUs: one Locust worker process per CPU.
data "aws_ec2_instance_type" "generator" {
  count         = local.locust ? 1 : 0
  instance_type = var.instance_type
}

resource "aws_security_group" "control" {
  name_prefix = "loadramp-generator-control-"
  description = "loadramp generator control of run ${var.loadramp_run_id}"
  vpc_id      = var.vpc_id
  tags        = local.tags

  ingress {
    description = "Locust master and workers, among themselves"
    from_port   = 5557
    to_port     = 5558
    protocol    = "tcp"
    self        = true
  }

  dynamic "ingress" {
    for_each = local.operator_ports
    content {
      description = "${ingress.value.what}, from the operator"
      from_port   = ingress.value.port
      to_port     = ingress.value.port
      protocol    = "tcp"
      cidr_blocks = [var.operator_cidr]
    }
  }

  egress {
    description = "anything out (load, package installs)"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

locals {
  # Strings go into the template as they are: it encodes them itself.
  master_user_data = templatefile("${path.module}/user_data.sh.tftpl", {
    role         = "master"
    master_ip    = ""
    locustfile   = var.locustfile
    agent_url    = var.agent_url
    agent_sha256 = var.agent_sha256
    agent_port   = var.agent_port
    agent_token  = var.loadramp_agent_token
  })
}

resource "aws_instance" "master" {
  count                       = local.locust ? 1 : 0
  ami                         = terraform_data.image.output
  instance_type               = var.instance_type
  subnet_id                   = var.subnet_ids[0]
  vpc_security_group_ids      = [aws_security_group.control.id, var.generator_security_group_id]
  key_name                    = var.key_name != "" ? var.key_name : null
  user_data                   = local.master_user_data
  user_data_replace_on_change = true

  metadata_options {
    http_endpoint = "enabled"
    http_tokens   = "required"
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = var.root_volume_gb
    encrypted   = true
  }

  lifecycle {
    precondition {
      # EC2 takes at most 16 KiB of user_data; the locustfile is most of it.
      condition     = length(local.master_user_data) <= 16384
      error_message = "user_data would be ${nonsensitive(length(local.master_user_data))} bytes with this locustfile (gzipped and base64-encoded); EC2 takes at most 16384. Shorten the locustfile or install it from an image."
    }
  }

  tags = merge(local.tags, { Name = "loadramp-locust-master" })
}

resource "aws_instance" "worker" {
  count                  = var.workers
  ami                    = terraform_data.image.output
  instance_type          = var.instance_type
  subnet_id              = var.subnet_ids[count.index % length(var.subnet_ids)]
  vpc_security_group_ids = [aws_security_group.control.id, var.generator_security_group_id]
  key_name               = var.key_name != "" ? var.key_name : null
  user_data = templatefile("${path.module}/user_data.sh.tftpl", {
    role         = "worker"
    master_ip    = local.locust ? aws_instance.master[0].private_ip : ""
    locustfile   = var.locustfile
    agent_url    = var.agent_url
    agent_sha256 = var.agent_sha256
    agent_port   = var.agent_port
    agent_token  = var.loadramp_agent_token
  })
  user_data_replace_on_change = true

  metadata_options {
    http_endpoint = "enabled"
    http_tokens   = "required"
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = var.root_volume_gb
    encrypted   = true
  }

  tags = merge(local.tags, { Name = "loadramp-generator-${count.index}" })
}
