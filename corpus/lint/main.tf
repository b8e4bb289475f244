# Groups as the azuread provider writes them (and the microsoft365 and msgraph providers).

resource "azuread_group" "sales_e3" {
  display_name     = "Sales E3"
  security_enabled = true
  types            = ["DynamicMembership"]

  dynamic_membership {
    enabled = true
    # An en dash copied from a document, after an escaped quote.
    rule    = "user.department -eq \"Sales\" –and user.accountEnabled -eq true"
  }
}

resource "azuread_group" "marketing" {
  display_name     = "Marketing"
  security_enabled = true
  types            = ["DynamicMembership"]

  dynamic_membership {
    enabled = true
    rule    = <<EOT
user.department -eq "Marketing" -or user.department -eq "Brand" -or user.department -eq "Events"
EOT
  }
}

resource "azuread_group" "from_variable" {
  display_name = "From a variable"
  types        = ["DynamicMembership"]

  dynamic_membership {
    enabled = true
    rule    = var.staff_rule
  }
}

resource "azuread_group" "templated" {
  display_name = "Templated"
  types        = ["DynamicMembership"]

  dynamic_membership {
    enabled = true
    rule    = "user.department -eq \"${var.department}\""
  }
}

resource "microsoft365_graph_beta_groups_group" "devices" {
  display_name                     = "Windows devices"
  group_types                      = ["DynamicMembership"]
  membership_rule                  = "(device.deviceOSType -eq \"Windows\") (device.accountEnabled -eq true)"
  membership_rule_processing_state = "On"
}

resource "msgraph_resource" "engineering" {
  url = "groups"
  body = {
    displayName                   = "Engineering"
    groupTypes                    = ["DynamicMembership"]
    membershipRule                = "user.jobTitle -match \"^Engineer.*\""
    membershipRuleProcessingState = "On"
  }
}

resource "msgraph_resource" "valid" {
  url = "groups"
  body = jsonencode({
    displayName    = "Valid"
    membershipRule = "user.city -eq \"Seattle\""
  })
}
