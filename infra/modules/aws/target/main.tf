# The target fleet on AWS: instance_count instances running nginx in front of
# the app (the bundled event bus), node_exporter and loadramp's agent (which
# observes the host every step and audits its limits). The load port is open
# only to the generator security group this module creates (the generators
# module joins it); SSH and node_exporter only to operator_cidr (checks.tf
# refuses 0.0.0.0/0 unless allow_any_operator). Downloads are checked
# against their sha256.

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
    "loadramp:role"   = "target"
  })
}

resource "aws_security_group" "generators" {
  name_prefix = "loadramp-generators-"
  description = "loadramp generators of run ${var.loadramp_run_id}"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { "loadramp:role" = "generator" })

  egress {
    description = "anything out (load, package installs)"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_security_group" "target" {
  name_prefix = "loadramp-target-"
  description = "loadramp target of run ${var.loadramp_run_id}"
  vpc_id      = var.vpc_id
  tags        = local.tags

  ingress {
    description     = "load, from the generators only"
    from_port       = var.load_port
    to_port         = var.load_port
    protocol        = "tcp"
    security_groups = [aws_security_group.generators.id]
  }

  ingress {
    description = "SSH, from the operator"
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = [var.operator_cidr]
  }

  ingress {
    description = "node_exporter, from the operator"
    from_port   = 9100
    to_port     = 9100
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

  egress {
    description = "anything out (package installs)"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_instance" "target" {
  count                  = var.instance_count
  ami                    = var.ami
  instance_type          = var.instance_type
  subnet_id              = var.subnet_ids[count.index % length(var.subnet_ids)]
  vpc_security_group_ids = [aws_security_group.target.id]
  key_name               = var.key_name != "" ? var.key_name : null
  # One-minute CloudWatch metrics: a step's window is a few minutes at most.
  monitoring = true
  # Strings go into the template as they are: it base64-encodes them itself.
  user_data = templatefile("${path.module}/user_data.sh.tftpl", {
    load_port            = var.load_port
    app_port             = var.app_port
    app_url              = var.app_url
    app_sha256           = var.app_sha256
    node_exporter_url    = var.node_exporter_url
    node_exporter_sha256 = var.node_exporter_sha256
    nofile               = var.nofile
    nginx_worker_conns   = var.nginx_worker_connections
    agent_url            = var.agent_url
    agent_sha256         = var.agent_sha256
    agent_port           = var.agent_port
    agent_token          = var.loadramp_agent_token
  })
  user_data_replace_on_change = true

  metadata_options {
    http_tokens = "required"
  }

  tags = merge(local.tags, { Name = "loadramp-target-${count.index}" })
}
