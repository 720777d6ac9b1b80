package remoting

// Request codes (RocketMQ RequestCode.java, rocketmq-all-5.3.x). Untyped so they compare with
// Command.Code (int32) and with plain integers. Where a request name would collide with a
// response name the request one carries a Req suffix (none collide today).
const (
	SendMessage                          = 10
	PullMessage                          = 11
	QueryMessage                         = 12
	QueryBrokerOffset                    = 13
	QueryConsumerOffset                  = 14
	UpdateConsumerOffset                 = 15
	UpdateAndCreateTopic                 = 17
	UpdateAndCreateTopicList             = 18
	GetAllTopicConfig                    = 21
	GetTopicConfigList                   = 22
	GetTopicNameList                     = 23
	UpdateBrokerConfig                   = 25
	GetBrokerConfig                      = 26
	TriggerDeleteFiles                   = 27
	GetBrokerRuntimeInfo                 = 28
	SearchOffsetByTimestamp              = 29
	GetMaxOffset                         = 30
	GetMinOffset                         = 31
	GetEarliestMsgStoretime              = 32
	ViewMessageByID                      = 33
	HeartBeat                            = 34
	UnregisterClient                     = 35
	ConsumerSendMsgBack                  = 36
	EndTransaction                       = 37
	GetConsumerListByGroup               = 38
	CheckTransactionState                = 39
	NotifyConsumerIdsChanged             = 40
	LockBatchMQ                          = 41
	UnlockBatchMQ                        = 42
	GetAllConsumerOffset                 = 43
	GetAllDelayOffset                    = 45
	CheckClientConfig                    = 46
	GetClientConfig                      = 47
	GetTimerCheckPoint                   = 60
	GetTimerMetrics                      = 61
	PutKVConfig                          = 100
	GetKVConfig                          = 101
	DeleteKVConfig                       = 102
	RegisterBroker                       = 103
	UnregisterBroker                     = 104
	GetRouteinfoByTopic                  = 105
	GetBrokerClusterInfo                 = 106
	UpdateAndCreateSubscriptionGroup     = 200
	GetAllSubscriptionGroupConfig        = 201
	GetTopicStatsInfo                    = 202
	GetConsumerConnectionList            = 203
	GetProducerConnectionList            = 204
	WipeWritePermOfBroker                = 205
	GetAllTopicListFromNameserver        = 206
	DeleteSubscriptionGroup              = 207
	GetConsumeStats                      = 208
	SuspendConsumer                      = 209
	ResumeConsumer                       = 210
	ResetConsumerOffsetInConsumer        = 211
	ResetConsumerOffsetInBroker          = 212
	AdjustConsumerThreadPool             = 213
	WhoConsumeTheMessage                 = 214
	DeleteTopicInBroker                  = 215
	DeleteTopicInNamesrv                 = 216
	RegisterTopicInNamesrv               = 217
	GetKVListByNamespace                 = 219
	ResetConsumerClientOffset            = 220
	GetConsumerStatusFromClient          = 221
	InvokeBrokerToResetOffset            = 222
	InvokeBrokerToGetConsumerStatus      = 223
	GetTopicsByCluster                   = 224
	UpdateAndCreateSubscriptionGroupList = 225
	QueryTopicConsumeByWho               = 300
	QueryConsumeTimeSpan                 = 303
	GetSystemTopicListFromNS             = 304
	GetSystemTopicListFromBroker         = 305
	CleanExpiredConsumequeue             = 306
	GetConsumerRunningInfo               = 307
	QueryCorrectionOffset                = 308
	ConsumeMessageDirectly               = 309
	SendMessageV2                        = 310
	GetUnitTopicList                     = 311
	GetHasUnitSubTopicList               = 312
	GetHasUnitSubUnunitTopicList         = 313
	CloneGroupOffset                     = 314
	ViewBrokerStatsData                  = 315
	CleanUnusedTopic                     = 316
	GetBrokerConsumeStats                = 317
	UpdateNamesrvConfig                  = 318
	GetNamesrvConfig                     = 319
	SendBatchMessage                     = 320
	QueryConsumeQueue                    = 321
	QueryDataVersion                     = 322
	ResumeCheckHalfMessage               = 323
	SendReplyMessage                     = 324
	SendReplyMessageV2                   = 325
	PushReplyMessageToClient             = 326
	AddWritePermOfBroker                 = 327
	GetAllProducerInfo                   = 328
	DeleteExpiredCommitlog               = 329
	QueryTopicsByConsumer                = 343
	QuerySubscriptionByConsumer          = 345
	GetTopicConfig                       = 351
	GetSubscriptionGroupConfig           = 352
	UpdateAndGetGroupForbidden           = 353
	LitePullMessage                      = 361
	RecallMessage                        = 370
	QueryAssignment                      = 400
	SetMessageRequestMode                = 401
	GetAllMessageRequestMode             = 402
	UpdateAndCreateStaticTopic           = 513
	GetBrokerMemberGroup                 = 901
	AddBroker                            = 902
	RemoveBroker                         = 903
	BrokerHeartbeat                      = 904
	NotifyMinBrokerIDChange              = 905
	ExchangeBrokerHaInfo                 = 906
	GetBrokerHaStatus                    = 907
	ResetMasterFlushOffset               = 908
	PopMessage                           = 200050
	AckMessage                           = 200051
	PeekMessage                          = 200052
	ChangeMessageInvisibleTime           = 200053
	Notification                         = 200054
	PollingInfo                          = 200055
	BatchAckMessage                      = 200151
)

// Response codes (RocketMQ RemotingSysResponseCode.java + ResponseCode.java).
const (
	Success                 = 0
	SystemError             = 1
	SystemBusy              = 2
	RequestCodeNotSupported = 3
	TransactionFailed       = 4

	FlushDiskTimeout          = 10
	SlaveNotAvailable         = 11
	FlushSlaveTimeout         = 12
	MessageIllegal            = 13
	ServiceNotAvailable       = 14
	VersionNotSupported       = 15
	NoPermission              = 16
	TopicNotExist             = 17
	TopicExistAlready         = 18
	PullNotFound              = 19
	PullRetryImmediately      = 20
	PullOffsetMoved           = 21
	QueryNotFound             = 22
	SubscriptionParseFailed   = 23
	SubscriptionNotExist      = 24
	SubscriptionNotLatest     = 25
	SubscriptionGroupNotExist = 26
	FilterDataNotExist        = 27
	FilterDataNotLatest       = 28
	InvalidParameter          = 29

	TransactionShouldCommit    = 200
	TransactionShouldRollback  = 201
	TransactionStateUnknow     = 202
	TransactionStateGroupWrong = 203
	NoBuyerID                  = 204
	NotInCurrentUnit           = 205
	ConsumerNotOnline          = 206
	ConsumeMsgTimeout          = 207
	NoMessage                  = 208
	PollingFull                = 209
	PollingTimeout             = 210
	BrokerNotExist             = 211
	BrokerDispatchNotComplete  = 212
	BroadcastConsumption       = 213
	FlowControl                = 215
	NotLeaderForQueue          = 501
	IllegalOperation           = 604

	RPCUnknown             = -1000
	RPCAddrIsNull          = -1002
	RPCSendToChannelFailed = -1004
	RPCTimeOut             = -1006

	GoAway = 1500

	ControllerFencedMasterEpoch          = 2000
	ControllerFencedSyncStateSetEpoch    = 2001
	ControllerInvalidMaster              = 2002
	ControllerInvalidReplicas            = 2003
	ControllerMasterNotAvailable         = 2004
	ControllerInvalidRequest             = 2005
	ControllerBrokerNotAlive             = 2006
	ControllerNotLeader                  = 2007
	ControllerBrokerMetadataNotExist     = 2008
	ControllerInvalidCleanBrokerMetadata = 2009
	ControllerBrokerNeedToBeRegistered   = 2010
	ControllerMasterStillExist           = 2011
	ControllerElectMasterFailed          = 2012
	ControllerAlterSyncStateSetFailed    = 2013
	ControllerBrokerIDInvalid            = 2014
	ControllerJraftInternalError         = 2015
	ControllerBrokerLiveInfoNotExists    = 2016

	UserNotExist   = 3001
	PolicyNotExist = 3002
)

// Language names as RocketMQ's LanguageCode enum spells them. JSON headers carry the name;
// the binary header carries the ordinal (see languageCodes).
const (
	LanguageJava    = "JAVA"
	LanguageCPP     = "CPP"
	LanguageDotNet  = "DOTNET"
	LanguagePython  = "PYTHON"
	LanguageDelphi  = "DELPHI"
	LanguageErlang  = "ERLANG"
	LanguageRuby    = "RUBY"
	LanguageOther   = "OTHER"
	LanguageHTTP    = "HTTP"
	LanguageGo      = "GO"
	LanguagePHP     = "PHP"
	LanguageOMS     = "OMS"
	LanguageRust    = "RUST"
	LanguageNodeJS  = "NODE_JS"
	LanguageUnknown = "UNKNOWN"
)

// languageCodes maps LanguageCode ordinals (binary header byte) to names.
var languageCodes = map[byte]string{
	0: LanguageJava, 1: LanguageCPP, 2: LanguageDotNet, 3: LanguagePython, 4: LanguageDelphi,
	5: LanguageErlang, 6: LanguageRuby, 7: LanguageOther, 8: LanguageHTTP, 9: LanguageGo,
	10: LanguagePHP, 11: LanguageOMS, 12: LanguageRust, 13: LanguageNodeJS, 127: LanguageUnknown,
}

// LanguageName returns the name of a LanguageCode ordinal ("UNKNOWN" when unassigned).
func LanguageName(b byte) string {
	if n, ok := languageCodes[b]; ok {
		return n
	}
	return LanguageUnknown
}

// LanguageOrdinal returns the LanguageCode ordinal of a name (127 UNKNOWN when unknown).
func LanguageOrdinal(name string) byte {
	for b, n := range languageCodes {
		if n == name {
			return b
		}
	}
	return 127
}

// Version is the RocketMQ version ordinal Rocketry reports in the version field of the
// commands it creates: MQVersion.V5_3_3 (ordinal 479).
const Version = 479
