package remoting

import "testing"

// TestCodeNames: request and response codes carry Apache's lower-cased constant names
// (RemotingHelper), including the Java spellings that join words; unknown codes their number.
func TestCodeNames(t *testing.T) {
	for code, want := range map[int32]string{
		SendMessageV2: "send_message_v2", HeartBeat: "heart_beat", GetRouteinfoByTopic: "get_routeinfo_by_topic",
		UpdateAndCreateSubscriptionGroup: "update_and_create_subscriptiongroup", ChangeMessageInvisibleTime: "change_message_invisibletime",
		GetKVListByNamespace: "get_kvlist_by_namespace", ViewMessageByID: "view_message_by_id", PopMessage: "pop_message", 12345: "12345",
	} {
		if got := RequestCodeName(code); got != want {
			t.Errorf("RequestCodeName(%d) = %q, want %q", code, got, want)
		}
	}
	for code, want := range map[int32]string{Success: "success", TopicNotExist: "topic_not_exist", SubscriptionGroupNotExist: "subscription_group_not_exist", 999: "999"} {
		if got := ResponseCodeName(code); got != want {
			t.Errorf("ResponseCodeName(%d) = %q, want %q", code, got, want)
		}
	}
}
