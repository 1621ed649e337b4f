# The generator fleet on AWS: workers instances running Locust workers and
# loadramp's agent (the builtin engine runs on the agents:
# fleets.generators.agents: { output: agents }), and one more instance, the
# Locust master. They join the target module's generator security group (the
# only source the target's load port accepts).
# Locust has no authentication between master and workers: its ports are open
# only inside the group, and the master's web API only to operator_cidr.

terraform {
  required_version = ">= 1.5.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

locals {
  tags = merge(var.tags, {
    "loadramp:run-id" = var.loadramp_run_id
    "loadramp:role"   = "generator"
  })
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

  ingress {
    description = "Locust web API, from the operator"
    from_port   = 8089
    to_port     = 8089
    protocol    = "tcp"
    cidr_blocks = [var.operator_cidr]
  }

  ingress {
    description = "loadramp agent, from the operator"
    from_port   = var.agent_port
    to_port     = var.agent_port
    protocol    = "tcp"
    cidr_blocks = [var.operator_cidr]
  }

  ingress {
    description = "SSH, from the operator"
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = [var.operator_cidr]
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
    workers      = var.workers
    agent_url    = var.agent_url
    agent_sha256 = var.agent_sha256
    agent_port   = var.agent_port
    agent_token  = var.loadramp_agent_token
  })
}

resource "aws_instance" "master" {
  ami                    = var.ami
  instance_type          = var.instance_type
  subnet_id              = var.subnet_ids[0]
  vpc_security_group_ids = [aws_security_group.control.id, var.generator_security_group_id]
  key_name               = var.key_name != "" ? var.key_name : null
  user_data              = local.master_user_data

  metadata_options {
    http_tokens = "required"
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
  ami                    = var.ami
  instance_type          = var.instance_type
  subnet_id              = var.subnet_ids[count.index % length(var.subnet_ids)]
  vpc_security_group_ids = [aws_security_group.control.id, var.generator_security_group_id]
  key_name               = var.key_name != "" ? var.key_name : null
  user_data = templatefile("${path.module}/user_data.sh.tftpl", {
    role         = "worker"
    master_ip    = aws_instance.master.private_ip
    locustfile   = var.locustfile
    workers      = var.workers
    agent_url    = var.agent_url
    agent_sha256 = var.agent_sha256
    agent_port   = var.agent_port
    agent_token  = var.loadramp_agent_token
  })

  metadata_options {
    http_tokens = "required"
  }

  tags = merge(local.tags, { Name = "loadramp-locust-worker-${count.index}" })
}
