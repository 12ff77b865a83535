//! The dashboard's words in Chinese (the default) and English. One enum: a message missing in
//! either language does not compile.

/// A language the dashboard speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// 简体中文 (the default).
    Zh,
    /// English.
    En,
}

impl Lang {
    /// From the `lang` cookie's value; anything else is Chinese.
    pub fn parse(value: Option<&str>) -> Lang {
        match value {
            Some("en") => Lang::En,
            _ => Lang::Zh,
        }
    }

    /// The cookie value and the `lang` attribute.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The other language (what the switch offers).
    pub fn other(self) -> Lang {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }

    /// The language's name in itself.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Zh => "中文",
            Lang::En => "English",
        }
    }

    /// A message in this language.
    pub fn t(self, message: M) -> &'static str {
        message.get(self)
    }
}

macro_rules! messages {
    ($($name:ident => $zh:literal, $en:literal;)*) => {
        /// A message the dashboard shows.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[allow(missing_docs, reason = "each variant is its English text")]
        pub enum M { $($name),* }

        impl M {
            /// Every message (for the tests).
            pub const ALL: &[M] = &[$(M::$name),*];

            /// The text in `lang`.
            pub fn get(self, lang: Lang) -> &'static str {
                match (self, lang) {
                    $((M::$name, Lang::Zh) => $zh, (M::$name, Lang::En) => $en,)*
                }
            }
        }
    };
}

messages! {
    Brand => "算网", "Suanwang";
    SkipToContent => "跳到正文", "Skip to content";
    MainNav => "主导航", "Main navigation";
    Overview => "联邦总览", "Federation overview";
    Pools => "资源池", "Pools";
    Jobs => "作业", "Jobs";
    Market => "算力市场", "Market";
    Vouchers => "算力券", "Vouchers";
    Money => "账单与结算", "Invoices and payouts";
    Audit => "审计", "Audit";
    Simulations => "仿真", "Simulations";
    SignIn => "登录", "Sign in";
    SignOut => "退出", "Sign out";
    SignInIntro => "用运营方发给您的令牌登录。令牌只保存在本浏览器的 Cookie 中。", "Sign in with the token your operator gave you. It is kept only in this browser's cookie.";
    Token => "令牌", "Token";
    SignedInAs => "当前身份", "Signed in as";
    SwitchLanguage => "切换语言", "Switch language";
    NotFoundTitle => "页面不存在", "Page not found";
    NotFoundText => "没有这个页面。请从导航中选择。", "There is no such page. Choose one from the navigation.";
    ForbiddenTitle => "无权访问", "Not allowed";
    UnavailableTitle => "暂时不可用", "Temporarily unavailable";
    ErrorTitle => "出错了", "Something went wrong";
    ReasonMissing => "请先登录。", "Please sign in first.";
    ReasonInvalid => "令牌无效：请检查是否完整复制。", "The token is not valid: check that you copied all of it.";
    ReasonExpired => "令牌已过期：请向运营方申请新令牌。", "The token has expired: ask your operator for a new one.";
    ReasonSignedOut => "您已退出。", "You have signed out.";
    Sites => "站点", "Sites";
    Cards => "加速卡", "Accelerator cards";
    Pflops => "算力 (PFLOPS, FP16)", "Compute (PFLOPS, FP16)";
    HealthyPools => "健康资源池", "Healthy pools";
    Queued => "排队作业", "Jobs queued";
    Running => "运行作业", "Jobs running";
    Utilisation => "利用率", "Utilisation";
    CapacityBySite => "各站点算力", "Capacity by site";
    CapacityByModel => "各型号算力", "Capacity by accelerator";
    Site => "站点", "Site";
    City => "城市", "City";
    Region => "区域", "Region";
    Model => "型号", "Model";
    Nodes => "节点", "Nodes";
    UtilisationOverTime => "利用率随时间变化", "Utilisation over time";
    QueueOverTime => "排队长度随时间变化", "Queue length over time";
    MinutesAgo => "分钟（0 为现在）", "minutes (0 = now)";
    PercentAllocated => "已分配卡的比例 (%)", "% of cards allocated";
    JobsWaiting => "等待中的作业", "jobs waiting";
    NoHistoryYet => "还没有采样：本服务器作为调度主节点运行后每分钟采样一次。", "No samples yet: the leading server samples once a minute.";
    MapTitle => "站点与时延圈", "Sites and latency circles";
    MapCaption => "圆面积与加速卡数成正比；连线标注单向时延；虚线圈为从枢纽出发光纤单向 1、3、5 毫秒可达范围（约 200 公里/毫秒）。", "Circle area is proportional to cards; links show one-way latency; dashed rings are the 1, 3 and 5 ms one-way fibre reach from the hub (about 200 km per ms).";
    Pool => "资源池", "Pool";
    Provider => "提供方", "Provider";
    Backend => "后端", "Backend";
    Health => "健康", "Health";
    Healthy => "健康", "healthy";
    Unhealthy => "不健康", "unhealthy";
    Drained => "已排空", "drained";
    LastSeen => "最近上报", "Last report";
    Never => "从未", "never";
    ListPrice => "按需价 (元/卡时)", "On-demand (¥/card-hour)";
    SpotPrice => "现货价 (元/卡时)", "Spot (¥/card-hour)";
    Drain => "排空", "Drain";
    Undrain => "恢复接单", "Undrain";
    Earnings => "收入", "Earnings";
    Earned => "已赚取", "Earned";
    PaidOut => "已支付", "Paid out";
    Owed => "应付", "Owed";
    Id => "编号", "ID";
    Name => "名称", "Name";
    State => "状态", "State";
    Tenant => "租户", "Tenant";
    Created => "提交时间", "Submitted";
    Updated => "更新时间", "Updated";
    Filter => "筛选", "Filter";
    AllStates => "全部状态", "All states";
    Apply => "应用", "Apply";
    OlderJobs => "更早的作业", "Older jobs";
    NoJobs => "没有作业。", "No jobs.";
    SubmitJob => "提交作业", "Submit a job";
    Command => "命令 (空格分隔)", "Command (space-separated)";
    CpuMilli => "CPU (千分之一核)", "CPU (milli-cores)";
    MemoryMib => "内存 (MiB)", "Memory (MiB)";
    Accelerators => "加速卡数", "Accelerators";
    DurationS => "模拟时长 (秒，仅模拟池)", "Simulated duration (s, simulated pools)";
    Framework => "框架", "Framework";
    DefaultFramework => "默认", "default";
    AcceleratorModels => "可用卡型 (空格分隔，可加速度如 Ascend-910B:0.6)", "Accepted models (space-separated, speed as Ascend-910B:0.6)";
    Submit => "提交", "Submit";
    Cancel => "取消作业", "Cancel job";
    History => "状态历史", "State history";
    Placement => "调度说明", "Placement explanation";
    Logs => "日志", "Logs";
    NoLogs => "暂无日志。", "No logs yet.";
    Usage => "用量 (卡秒)", "Usage (accelerator-seconds)";
    Detail => "说明", "Detail";
    Time => "时间", "Time";
    OrderBook => "订单簿深度", "Order book depth";
    Window => "时间窗", "Window";
    Bids => "买单 (价格×卡)", "Bids (price × cards)";
    Asks => "卖单 (价格×卡)", "Asks (price × cards)";
    EmptyBook => "订单簿为空。", "The book is empty.";
    ClearingPrices => "出清价随时间变化", "Clearing prices over time";
    AuctionsAgo => "拍卖时间 (小时前)", "auction time (hours ago)";
    YuanPerCardHour => "元/卡时", "¥ per card-hour";
    NoAuctions => "还没有撮合出价格的拍卖。", "No auction has cleared a price yet.";
    Contracts => "合约", "Contracts";
    Price => "价格 (元/卡时)", "Price (¥/card-hour)";
    NoContracts => "没有合约。", "No contracts.";
    Prices => "挂牌价与现货价", "Posted and spot prices";
    Programs => "算力券项目", "Programmes";
    Issuer => "发放方", "Issuer";
    Budget => "预算", "Budget";
    Paid => "已兑付", "Paid";
    Reserved => "已预留", "Reserved";
    Available => "可用", "Available";
    Expired => "已到期", "expired";
    Active => "有效", "active";
    BurnDown => "预算消耗", "Budget burn-down";
    MonthOfYear => "月份", "month";
    YuanLeft => "剩余 (元)", "¥ left";
    PerFirm => "各企业使用", "Use by firm";
    Cap => "上限", "Cap";
    Redeemed => "已兑付", "Redeemed";
    Applications => "申请", "Applications";
    AwaitingDecision => "待审批", "awaiting a decision";
    Approve => "批准", "Approve";
    Reject => "驳回", "Reject";
    Reason => "理由", "Reason";
    Claims => "用券申请", "Claims";
    Contract => "合同", "Contract";
    Face => "面额", "Face value";
    Remaining => "余额", "Remaining";
    ApproveClaim => "核准兑付", "Approve and pay";
    Period => "账期 (YYYY-MM)", "Period (YYYY-MM)";
    Job => "作业", "Job";
    NoPrograms => "没有可见的算力券项目。", "No programmes you can see.";
    NoApplications => "没有申请。", "No applications.";
    NoClaims => "没有用券申请。", "No claims.";
    Invoices => "账单", "Invoices";
    Amount => "金额", "Amount";
    Subsidy => "补贴", "Subsidy";
    TenantShare => "租户应付", "Tenant pays";
    Balance => "余额", "Balance";
    Charged => "已扣费", "Charged";
    Credited => "已入账", "Credited";
    NoInvoices => "没有账单。", "No invoices.";
    Payouts => "结算给提供方", "Payouts to providers";
    PayOut => "支付", "Pay out";
    AmountFen => "金额 (分)", "Amount (fen)";
    IdempotencyKey => "幂等键", "Idempotency key";
    Lines => "账单明细", "Invoice lines";
    CardHours => "卡时", "Card-hours";
    AuditChain => "审计链", "Audit chain";
    Verify => "校验整条链", "Verify the whole chain";
    Actor => "操作者", "Actor";
    Action => "动作", "Action";
    Subject => "对象", "Subject";
    Seq => "序号", "Seq";
    Hash => "哈希", "Hash";
    NewerEntries => "更新的条目", "Newer entries";
    OlderEntries => "更早的条目", "Older entries";
    SimIntro => "选择联邦与轨迹（或上传一个），选定排队策略后运行；结果在此显示。", "Pick a federation and a trace (or upload one), choose a queue policy and run; the report appears here.";
    Federation => "联邦", "Federation";
    ThisFederation => "本平台的联邦", "This platform's federation";
    Trace => "轨迹", "Trace";
    TraceFormat => "轨迹格式", "Trace format";
    UploadTrace => "上传轨迹文件", "Upload a trace file";
    SampleTrace => "内置示例轨迹", "Built-in sample trace";
    Policy => "排队策略", "Queue policy";
    Run => "运行", "Run";
    Runs => "运行记录", "Runs";
    NoRuns => "还没有运行过仿真。", "No simulation has run yet.";
    MeanJct => "平均完成时间 (时)", "Mean JCT (h)";
    P99Jct => "P99 完成时间 (时)", "p99 JCT (h)";
    MeanWait => "平均排队 (时)", "Mean wait (h)";
    Cost => "费用", "Cost";
    Report => "报告", "Report";
    Refreshes => "数据每 5 秒自动刷新。", "Figures refresh every 5 seconds.";
    Yes => "是", "yes";
    No => "否", "no";
    Working => "处理中…", "Working…";
    Actions => "操作", "Actions";
    WindowStart => "交付开始（本地时间）", "Window start (your time)";
    WindowEnd => "交付结束（本地时间）", "Window end (your time)";
    PlaceBuy => "挂买单", "Place a buy order";
    PlaceSell => "挂卖单", "Place a sell order";
    YourOrders => "我的订单", "Your orders";
    Side => "方向", "Side";
    CancelOrder => "撤单", "Cancel order";
    JctCdf => "作业完成时间分布（累计）", "Job completion time, cumulative";
    JobsFinishedWithin => "在此时间内完成的作业 (%)", "% of jobs finished within";
    UploadedFile => "（下方上传的文件）", "(the file uploaded below)";
    PflopsShort => "PFLOPS", "PFLOPS";
    Nothing => "—", "—";
    Tokens => "令牌", "Tokens";
    TokensIntro => "平台签发的全部令牌（从不显示令牌本身）。吊销立即生效；最后一个有效的运营方令牌不能吊销。",
        "Every token the platform issued (never the secret itself). Revoking takes effect at once; the last working operator token cannot be revoked.";
    Role => "角色", "Role";
    Label => "标签", "Label";
    Scope => "范围", "Scope";
    Issued => "签发时间", "Issued";
    Expires => "到期时间", "Expires";
    Revoke => "吊销", "Revoke";
    RevokedState => "已吊销", "revoked";
    OlderTokens => "更多令牌", "More tokens";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_has_both_languages() {
        for m in M::ALL {
            assert!(!m.get(Lang::Zh).is_empty() && !m.get(Lang::En).is_empty(), "{m:?}");
        }
        assert_eq!(Lang::parse(Some("en")), Lang::En);
        assert_eq!(Lang::parse(None), Lang::Zh);
        assert_eq!(Lang::parse(Some("fr")), Lang::Zh);
    }
}
