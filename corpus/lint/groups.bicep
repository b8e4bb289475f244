extension microsoftGraphV1

param pilotRule string = 'user.department -eq "Pilot"'

resource salesE3 'Microsoft.Graph/groups@v1.0' = {
  uniqueName: 'sales-e3'
  displayName: 'Sales E3'
  mailEnabled: false
  mailNickname: 'salese3'
  securityEnabled: true
  groupTypes: ['DynamicMembership']
  // It\'s "Sales" with curly quotes, as pasted from a document.
  membershipRule: 'user.department -eq “Sales” -and user.companyName -eq \'Contoso\''
  membershipRuleProcessingState: 'On'
}

resource pilot 'Microsoft.Graph/groups@v1.0' = {
  uniqueName: 'pilot'
  displayName: 'Pilot'
  mailEnabled: false
  mailNickname: 'pilot'
  securityEnabled: true
  groupTypes: ['DynamicMembership']
  membershipRule: pilotRule
}

resource multiLine 'Microsoft.Graph/groups@v1.0' = {
  uniqueName: 'multi-line'
  displayName: 'Multi line'
  mailEnabled: false
  mailNickname: 'multiline'
  securityEnabled: true
  groupTypes: ['DynamicMembership']
  membershipRule: '''
user.accountEnabled -eq true -and
user.usageLocation -eq "US" -and user.city -eq "Seattle" -and user.city -eq "Redmond"'''
}
