# The target fleet on AWS: instance_count instances serving load_port (nginx
# in front of the bundled event bus, or your own service), node_exporter, and
# loadramp's agent, which observes each host every step and through which
# loadramp checks that the service answers before the first step. With
# load_balancer, a Network Load Balancer spreads the load over the hosts.
#
# Security groups: the load port admits only the generator security group
# this module creates (the generators module joins it) and, with
# load_from_operator, operator_cidr; behind a load balancer, only the load
# balancer's own group. The agent port, node_exporter and SSH (with a key)
# admit only operator_cidr (checks.tf refuses 0.0.0.0/0 unless
# allow_any_operator). IMDSv2 is required and root volumes are encrypted.
# Every download is checked against its SHA-256.

terraform {
  required_version = ">= 1.5.0"
  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.30: security groups on Network Load Balancers, and
      # aws_ssm_parameter's insecure_value.
      version = ">= 5.30"
    }
  }
}

locals {
  tags = merge(var.tags, {
    "loadramp:run-id" = var.loadramp_run_id
    "loadramp:role"   = "target"
  })
  operator_ports = concat(
    [{ port = var.agent_port, what = "loadramp agent" }],
    var.node_exporter_url != "" ? [{ port = 9100, what = "node_exporter" }] : [],
    var.key_name != "" ? [{ port = 22, what = "SSH" }] : [],
  )
}

# The image: ami, or the current one of image_parameter, looked up once and
# kept for the life of the workspace (a run, or a campaign's variants), so a
# new image published meanwhile replaces no host. Changing ami or
# image_parameter looks it up again.
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

resource "aws_security_group" "load_balancer" {
  count       = var.load_balancer ? 1 : 0
  name_prefix = "loadramp-lb-"
  description = "loadramp load balancer of run ${var.loadramp_run_id}"
  vpc_id      = var.vpc_id
  tags        = local.tags

  ingress {
    description     = "load, from the generators"
    from_port       = var.load_port
    to_port         = var.load_port
    protocol        = "tcp"
    security_groups = [aws_security_group.generators.id]
  }

  dynamic "ingress" {
    for_each = var.load_from_operator ? [var.operator_cidr] : []
    content {
      description = "load, from the operator"
      from_port   = var.load_port
      to_port     = var.load_port
      protocol    = "tcp"
      cidr_blocks = [ingress.value]
    }
  }

  egress {
    description = "to the targets (load and health checks)"
    from_port   = var.load_port
    to_port     = var.load_port
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_security_group" "target" {
  name_prefix = "loadramp-target-"
  description = "loadramp target of run ${var.loadramp_run_id}"
  vpc_id      = var.vpc_id
  tags        = local.tags

  ingress {
    description     = var.load_balancer ? "load, from the load balancer only" : "load, from the generators"
    from_port       = var.load_port
    to_port         = var.load_port
    protocol        = "tcp"
    security_groups = var.load_balancer ? [aws_security_group.load_balancer[0].id] : [aws_security_group.generators.id]
  }

  dynamic "ingress" {
    for_each = var.load_from_operator && !var.load_balancer ? [var.operator_cidr] : []
    content {
      description = "load, from the operator"
      from_port   = var.load_port
      to_port     = var.load_port
      protocol    = "tcp"
      cidr_blocks = [ingress.value]
    }
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
    description = "anything out (package installs, downloads)"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

locals {
  # Strings go into the template as they are: it base64-encodes them itself.
  user_data = templatefile("${path.module}/user_data.sh.tftpl", {
    load_port            = var.load_port
    app_port             = var.app_port
    nginx                = var.nginx
    app_url              = var.app_url
    app_sha256           = var.app_sha256
    app_args             = var.app_args
    app_user_data        = var.app_user_data
    node_exporter_url    = var.node_exporter_url
    node_exporter_sha256 = var.node_exporter_sha256
    nofile               = var.nofile
    nginx_worker_conns   = var.nginx_worker_connections
    agent_url            = var.agent_url
    agent_sha256         = var.agent_sha256
    agent_port           = var.agent_port
    agent_token          = var.loadramp_agent_token
  })
}

resource "aws_instance" "target" {
  count                  = var.instance_count
  ami                    = terraform_data.image.output
  instance_type          = var.instance_type
  subnet_id              = var.subnet_ids[count.index % length(var.subnet_ids)]
  vpc_security_group_ids = [aws_security_group.target.id]
  key_name               = var.key_name != "" ? var.key_name : null
  # One-minute CloudWatch metrics: a step's window is a few minutes at most.
  monitoring                  = true
  user_data                   = local.user_data
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
      # EC2 takes at most 16 KiB of user_data; app_user_data is yours.
      condition     = length(local.user_data) <= 16384
      error_message = "user_data would be ${nonsensitive(length(local.user_data))} bytes; EC2 takes at most 16384. Shorten app_user_data, or install your service from an image (ami)."
    }
  }

  tags = merge(local.tags, { Name = "loadramp-target-${count.index}" })
}

# The load balancer: TCP on load_port to every host, cross-zone, checking
# health_path on each host over HTTP.
resource "aws_lb" "target" {
  count                            = var.load_balancer ? 1 : 0
  name_prefix                      = "lr-"
  load_balancer_type               = "network"
  internal                         = var.load_balancer_internal
  subnets                          = var.subnet_ids
  security_groups                  = [aws_security_group.load_balancer[0].id]
  enable_cross_zone_load_balancing = true
  tags                             = local.tags
}

resource "aws_lb_target_group" "target" {
  count                = var.load_balancer ? 1 : 0
  name_prefix          = "lr-"
  port                 = var.load_port
  protocol             = "TCP"
  target_type          = "instance"
  vpc_id               = var.vpc_id
  deregistration_delay = 10
  tags                 = local.tags

  health_check {
    protocol            = "HTTP"
    port                = "traffic-port"
    path                = var.health_path
    matcher             = "200-399"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }
}

resource "aws_lb_target_group_attachment" "target" {
  count            = var.load_balancer ? var.instance_count : 0
  target_group_arn = aws_lb_target_group.target[0].arn
  target_id        = aws_instance.target[count.index].id
  port             = var.load_port
}

resource "aws_lb_listener" "target" {
  count             = var.load_balancer ? 1 : 0
  load_balancer_arn = aws_lb.target[0].arn
  port              = var.load_port
  protocol          = "TCP"
  tags              = local.tags

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.target[0].arn
  }
}
